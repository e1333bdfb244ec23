// SPDX-License-Identifier: GPL-2.0
/*
 * top file: reads and writes (calls and bytes) per thread and file, summed
 * in the kernel; userspace reads and clears the map every interval.
 *
 * Facilities: the syscall tracepoints of read, write, pread64, pwrite64,
 * readv and writev, at their exit only: the byte count is the result, the
 * fd is still in the task's saved registers (task.h), and the file is found
 * behind it. Regular files only, unless --all-files.
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; top gadgets
 * send no events through them (their results are the counters map). */
#include "buffer.h"
#include "files.h"
#include "task.h"
#include "program.h"

#define IG_S_IFMT 00170000
#define IG_S_IFREG 0100000
#define IG_S_IFSOCK 0140000

const volatile bool gadget_all_files = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ig_topfile_key);
	__type(value, struct ig_topfile_value);
} file_stats SEC(".maps");

static __always_inline int rw_exit(long ret, __u32 is_write)
{
	struct ig_topfile_key key = {};
	struct pt_regs *regs;
	struct ig_topfile_value *v;
	struct file *file;
	struct dentry *dentry;
	struct qstr name;
	__u64 pid_tgid;
	__u32 mode, type;
	__s32 fd;
	__u64 mntns_id;

	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	if (ret < 0)
		return 0;
	/* The fd is the call's first argument, still in its saved registers. */
	regs = gadget_user_regs();
	if (!regs)
		return 0;
	fd = BPF_CORE_READ(regs, di);
	file = gadget_current_file(fd);
	if (!file)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & IG_S_IFMT) == IG_S_IFREG)
		type = 'R';
	else if ((mode & IG_S_IFMT) == IG_S_IFSOCK)
		type = 'S';
	else
		type = 'O';
	if (type != 'R' && !gadget_all_files)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	key.pid = pid_tgid >> 32;
	key.tid = (__u32)pid_tgid;
	key.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	key.inode = BPF_CORE_READ(file, f_inode, i_ino);
	v = bpf_map_lookup_elem(&file_stats, &key);
	if (!v) {
		struct ig_topfile_value zero = {};

		zero.mntns_id = mntns_id;
		zero.type = type;
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		dentry = BPF_CORE_READ(file, f_path.dentry);
		name = BPF_CORE_READ(dentry, d_name);
		bpf_probe_read_kernel_str(zero.name, sizeof(zero.name), name.name);
		bpf_map_update_elem(&file_stats, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&file_stats, &key);
		if (!v) {
			/* The map is full until userspace next reads it. */
			gadget_count(IG_STAT_LOST);
			return 0;
		}
	}
	if (is_write) {
		__sync_fetch_and_add(&v->writes, 1);
		__sync_fetch_and_add(&v->wbytes, ret);
	} else {
		__sync_fetch_and_add(&v->reads, 1);
		__sync_fetch_and_add(&v->rbytes, ret);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int ig_read_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rw_exit(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_pread64")
int ig_pread_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rw_exit(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int ig_readv_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rw_exit(ctx->ret, 0);
}

SEC("tracepoint/syscalls/sys_exit_write")
int ig_write_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rw_exit(ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int ig_pwrite_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rw_exit(ctx->ret, 1);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int ig_writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	return rw_exit(ctx->ret, 1);
}

char LICENSE[] SEC("license") = "GPL";

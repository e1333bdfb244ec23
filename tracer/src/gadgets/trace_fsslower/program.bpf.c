// SPDX-License-Identifier: GPL-2.0
/*
 * trace fsslower: reads, writes, opens and fsyncs of regular files that
 * take at least --min, with their filesystem.
 *
 * Three variants, chosen at load time (mod.rs):
 * - fentry and fexit on vfs_read, vfs_write, vfs_open and vfs_fsync_range
 *   where BPF trampolines are allowed: as the kprobes below, cheaper.
 * - kprobes and kretprobes on vfs_read, vfs_write, vfs_open and
 *   vfs_fsync_range: every path into a filesystem (read, pread, readv and
 *   the kernel's own reads go through them), timed at the VFS.
 * - syscall tracepoints (kernels without kprobes, as this project's own
 *   build host): read, write, pread64, pwrite64, openat, fsync and
 *   fdatasync, timed from the syscall's entry to its exit; readv/writev,
 *   io_uring and the kernel's own I/O are not seen. Said in `ig check` and
 *   in the help.
 * All keep the start by thread and operation in a hash map, and at the end
 * drop what is fast, not a regular file, or not of --filesystem.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "program.h"

#define IG_S_IFMT 00170000
#define IG_S_IFREG 0100000

const volatile __u64 gadget_min_ns = 10 * 1000 * 1000;
const volatile bool gadget_fs_set = false;
const volatile char gadget_fs[IG_FS_NAME_LEN] = {};

struct start_key {
	__u32 tid;
	__u32 op;
};

struct start {
	__u64 ts;
	__u64 mntns_id;
	struct file *file; /* NULL until known (an open's) */
	__s64 offset;
	__s32 fd;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct start_key);
	__type(value, struct start);
} starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_fsslower_event);
} scratch SEC(".maps");

static __always_inline void begin(__u32 op, struct file *file, __s32 fd, __s64 offset)
{
	__u64 mntns_id = gadget_get_mntns_id();
	struct start_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .op = op};
	struct start s = {};

	if (gadget_should_discard_current(mntns_id))
		return;
	s.ts = bpf_ktime_get_ns();
	s.mntns_id = mntns_id;
	s.file = file;
	s.fd = fd;
	s.offset = offset;
	bpf_map_update_elem(&starts, &key, &s, BPF_ANY);
}

static __always_inline bool fs_differs(const char *name)
{
#pragma unroll
	for (int i = 0; i < IG_FS_NAME_LEN; i++) {
		if (name[i] != gadget_fs[i])
			return true;
		if (!name[i])
			return false;
	}
	return false;
}

/* The end of op: file (NULL: the start's, or the one behind its fd). */
static __always_inline void end(__u32 op, struct file *file, __s64 ret)
{
	struct start_key key = {.tid = (__u32)bpf_get_current_pid_tgid(), .op = op};
	struct ig_fsslower_event *e;
	struct start *s = bpf_map_lookup_elem(&starts, &key);
	struct dentry *dentry;
	struct qstr name;
	__u32 zero = 0;
	__u64 latency;

	if (!s)
		return;
	latency = bpf_ktime_get_ns() - s->ts;
	if (!file)
		file = s->file ? s->file : gadget_current_file(s->fd);
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (ret < 0 || latency < gadget_min_ns || !file || !e)
		goto out;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & IG_S_IFMT) != IG_S_IFREG)
		goto out;
	bpf_probe_read_kernel_str(e->fs, sizeof(e->fs),
				  BPF_CORE_READ(file, f_inode, i_sb, s_type, name));
	if (gadget_fs_set && fs_differs(e->fs))
		goto out;
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	e->latency_ns = latency;
	e->op = op;
	e->bytes = op == IG_FS_READ || op == IG_FS_WRITE ? ret : 0;
	e->offset = s->offset;
	gadget_fill_process(&e->process, s->mntns_id);
	dentry = BPF_CORE_READ(file, f_path.dentry);
	name = BPF_CORE_READ(dentry, d_name);
	bpf_probe_read_kernel_str(e->file, sizeof(e->file), name.name);
	gadget_output(e, sizeof(*e));
out:
	bpf_map_delete_elem(&starts, &key);
}

/* The kprobe variant. */

static __always_inline __s64 pos_at(loff_t *pos)
{
	__s64 off = 0;

	if (pos)
		bpf_probe_read_kernel(&off, sizeof(off), pos);
	return off;
}

SEC("kprobe/vfs_read")
int ig_vfs_read(struct pt_regs *ctx)
{
	begin(IG_FS_READ, (struct file *)PT_REGS_PARM1(ctx), -1,
	      pos_at((loff_t *)PT_REGS_PARM4(ctx)));
	return 0;
}

SEC("kretprobe/vfs_read")
int ig_vfs_read_ret(struct pt_regs *ctx)
{
	end(IG_FS_READ, NULL, PT_REGS_RC(ctx));
	return 0;
}

SEC("kprobe/vfs_write")
int ig_vfs_write(struct pt_regs *ctx)
{
	begin(IG_FS_WRITE, (struct file *)PT_REGS_PARM1(ctx), -1,
	      pos_at((loff_t *)PT_REGS_PARM4(ctx)));
	return 0;
}

SEC("kretprobe/vfs_write")
int ig_vfs_write_ret(struct pt_regs *ctx)
{
	end(IG_FS_WRITE, NULL, PT_REGS_RC(ctx));
	return 0;
}

SEC("kprobe/vfs_open")
int ig_vfs_open(struct pt_regs *ctx)
{
	begin(IG_FS_OPEN, (struct file *)PT_REGS_PARM2(ctx), -1, 0);
	return 0;
}

SEC("kretprobe/vfs_open")
int ig_vfs_open_ret(struct pt_regs *ctx)
{
	end(IG_FS_OPEN, NULL, PT_REGS_RC(ctx));
	return 0;
}

SEC("kprobe/vfs_fsync_range")
int ig_vfs_fsync(struct pt_regs *ctx)
{
	begin(IG_FS_FSYNC, (struct file *)PT_REGS_PARM1(ctx), -1, 0);
	return 0;
}

SEC("kretprobe/vfs_fsync_range")
int ig_vfs_fsync_ret(struct pt_regs *ctx)
{
	end(IG_FS_FSYNC, NULL, PT_REGS_RC(ctx));
	return 0;
}

/* The trampoline variant: the same functions, through fentry and fexit
 * (typed arguments, no breakpoint; the exit has the file again). */

SEC("fentry/vfs_read")
int BPF_PROG(ig_vfs_read_fentry, struct file *file, char *buf, size_t count, loff_t *pos)
{
	begin(IG_FS_READ, file, -1, pos_at(pos));
	return 0;
}

SEC("fexit/vfs_read")
int BPF_PROG(ig_vfs_read_fexit, struct file *file, char *buf, size_t count, loff_t *pos,
	     ssize_t ret)
{
	end(IG_FS_READ, file, ret);
	return 0;
}

SEC("fentry/vfs_write")
int BPF_PROG(ig_vfs_write_fentry, struct file *file, const char *buf, size_t count, loff_t *pos)
{
	begin(IG_FS_WRITE, file, -1, pos_at(pos));
	return 0;
}

SEC("fexit/vfs_write")
int BPF_PROG(ig_vfs_write_fexit, struct file *file, const char *buf, size_t count, loff_t *pos,
	     ssize_t ret)
{
	end(IG_FS_WRITE, file, ret);
	return 0;
}

SEC("fentry/vfs_open")
int BPF_PROG(ig_vfs_open_fentry, const struct path *path, struct file *file)
{
	begin(IG_FS_OPEN, file, -1, 0);
	return 0;
}

SEC("fexit/vfs_open")
int BPF_PROG(ig_vfs_open_fexit, const struct path *path, struct file *file, int ret)
{
	end(IG_FS_OPEN, file, ret);
	return 0;
}

SEC("fentry/vfs_fsync_range")
int BPF_PROG(ig_vfs_fsync_fentry, struct file *file, loff_t start, loff_t end_, int datasync)
{
	begin(IG_FS_FSYNC, file, -1, 0);
	return 0;
}

SEC("fexit/vfs_fsync_range")
int BPF_PROG(ig_vfs_fsync_fexit, struct file *file, loff_t start, loff_t end_, int datasync,
	     int ret)
{
	end(IG_FS_FSYNC, file, ret);
	return 0;
}

/* The syscall variant. */

static __always_inline __s64 f_pos_of(__s32 fd)
{
	struct file *file = gadget_current_file(fd);

	return file ? BPF_CORE_READ(file, f_pos) : 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int ig_sys_read(struct trace_event_raw_sys_enter *ctx)
{
	__s32 fd = ctx->args[0];

	begin(IG_FS_READ, NULL, fd, f_pos_of(fd));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pread64")
int ig_sys_pread(struct trace_event_raw_sys_enter *ctx)
{
	begin(IG_FS_READ, NULL, ctx->args[0], ctx->args[3]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int ig_sys_read_ret(struct trace_event_raw_sys_exit *ctx)
{
	end(IG_FS_READ, NULL, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pread64")
int ig_sys_pread_ret(struct trace_event_raw_sys_exit *ctx)
{
	end(IG_FS_READ, NULL, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int ig_sys_write(struct trace_event_raw_sys_enter *ctx)
{
	__s32 fd = ctx->args[0];

	begin(IG_FS_WRITE, NULL, fd, f_pos_of(fd));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwrite64")
int ig_sys_pwrite(struct trace_event_raw_sys_enter *ctx)
{
	begin(IG_FS_WRITE, NULL, ctx->args[0], ctx->args[3]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int ig_sys_write_ret(struct trace_event_raw_sys_exit *ctx)
{
	end(IG_FS_WRITE, NULL, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int ig_sys_pwrite_ret(struct trace_event_raw_sys_exit *ctx)
{
	end(IG_FS_WRITE, NULL, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int ig_sys_openat(struct trace_event_raw_sys_enter *ctx)
{
	begin(IG_FS_OPEN, NULL, -1, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ig_sys_openat_ret(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;

	/* The new descriptor is the result. */
	end(IG_FS_OPEN, ret >= 0 ? gadget_current_file(ret) : NULL, ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fsync")
int ig_sys_fsync(struct trace_event_raw_sys_enter *ctx)
{
	begin(IG_FS_FSYNC, NULL, ctx->args[0], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int ig_sys_fdatasync(struct trace_event_raw_sys_enter *ctx)
{
	begin(IG_FS_FSYNC, NULL, ctx->args[0], 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_fsync")
int ig_sys_fsync_ret(struct trace_event_raw_sys_exit *ctx)
{
	end(IG_FS_FSYNC, NULL, ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_fdatasync")
int ig_sys_fdatasync_ret(struct trace_event_raw_sys_exit *ctx)
{
	end(IG_FS_FSYNC, NULL, ctx->ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

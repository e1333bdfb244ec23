// SPDX-License-Identifier: GPL-2.0
/*
 * trace exec: every execve/execveat, successful or not.
 *
 * Facilities: tracepoints syscalls/sys_{enter,exit}_{execve,execveat} and
 * sched/sched_process_exec (this kernel has no kprobes or fentry).
 *
 * A successful exec is reported from sched_process_exec, reading the
 * arguments from the new mm (arg_start..arg_end). The kernel has just written
 * them there, so the pages are present: reading argv at sys_enter instead
 * misses arguments whose pages the caller never touched (a fresh fork child
 * whose strings sit in not-yet-faulted file pages), since BPF cannot fault.
 * A failed exec is reported from sys_exit with the caller's argv, the only
 * copy there is.
 */
#include "common.h"
#include "filter.h"
#include "task.h"
#include "buffer.h"
#include "paths.h"
#include "program.h"

const volatile bool gadget_collect_cwd = false;
const volatile bool gadget_ignore_errors = false;

/* What sys_enter saw, for the exit of a failing exec. */
struct exec_start {
	const char *const *argv;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct exec_start);
} exec_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_exec_event);
} exec_scratch SEC(".maps");

#define OVERLAYFS_SUPER_MAGIC 0x794c7630

/* Fills the fields common to both paths; returns NULL if the event is not wanted. */
static __always_inline struct ig_exec_event *exec_event_begin(__s32 retval)
{
	__u32 zero = 0;
	struct ig_exec_event *e;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return NULL;
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e->process, gadget_get_mntns_id());
	gadget_fill_parent(&e->process);
	if (bpf_core_field_exists(task->loginuid)) {
		e->loginuid = BPF_CORE_READ(task, loginuid.val);
		e->sessionid = BPF_CORE_READ(task, sessionid);
	} else {
		e->loginuid = (__u32)-1;
		e->sessionid = (__u32)-1;
	}
	e->retval = retval;
	e->flags = 0;
	e->args_size = 0;
	e->cwd_size = 0;
	if (gadget_collect_cwd) {
		struct path pwd = BPF_CORE_READ(task, fs, pwd);

		e->cwd_size = gadget_read_path(&pwd, e->cwd);
	}
	return e;
}

static __always_inline void exec_event_send(struct ig_exec_event *e)
{
	__u64 size;

	if (e->cwd_size) {
		size = sizeof(*e);
	} else {
		size = offsetof(struct ig_exec_event, args) + e->args_size;
		if (size > sizeof(*e))
			size = sizeof(*e);
	}
	gadget_output(e, size);
}

static __always_inline int exec_enter(const char *const *argv)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_start start = {.argv = argv};

	if (gadget_should_discard_mntns_id(gadget_get_mntns_id()))
		return 0;
	bpf_map_update_elem(&exec_starts, &tid, &start, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int ig_execve_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int ig_execveat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *const *)ctx->args[2]);
}

/* Only failures are reported here; success was reported by sched_process_exec. */
static __always_inline int exec_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_start *start = bpf_map_lookup_elem(&exec_starts, &tid);
	struct ig_exec_event *e;
	const char *const *argv;
	int i;

	if (!start)
		return 0;
	argv = start->argv;
	bpf_map_delete_elem(&exec_starts, &tid);
	if (ret >= 0 || gadget_ignore_errors)
		return 0;
	/* The container filter was applied at the entry; the process ones here, with the comm the exec kept. */
	if (gadget_should_discard_current_process())
		return 0;

	e = exec_event_begin(ret);
	if (!e)
		return 0;
	for (i = 0; i < IG_EXEC_MAX_ARGV; i++) {
		const char *arg = NULL;
		long n;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		if (e->args_size > IG_EXEC_ARGS_MAX - IG_EXEC_ARG_MAX) {
			e->flags |= IG_EXEC_ARGS_TRUNCATED;
			break;
		}
		n = bpf_probe_read_user_str(&e->args[e->args_size], IG_EXEC_ARG_MAX, arg);
		if (n <= 0)
			break;
		if (n == IG_EXEC_ARG_MAX)
			e->flags |= IG_EXEC_ARGS_TRUNCATED;
		e->args_size += n;
	}
	exec_event_send(e);
	return 0;
}

/* Attached to sys_exit_execve and sys_exit_execveat: both exits are the same. */
SEC("tracepoint/syscalls/sys_exit_execve")
int ig_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

/*
 * Whether the task's executable is a file of an overlayfs upper layer (a
 * binary the container wrote or changed, not one of its image).
 *
 * struct ovl_inode is overlayfs' own: in vmlinux's BTF where overlayfs is
 * built in, in the overlay module's BTF where it is a module (Debian,
 * Ubuntu, RHEL, Amazon Linux), which the loader then adds to what this
 * object relocates against. Where no BTF has it (Linux 5.10 has no module
 * BTF), the layout every ovl_inode has had since 4.19 is used: the upper
 * dentry is the member right after the embedded VFS inode, whose size
 * vmlinux's BTF gives.
 */
static __always_inline bool exe_in_upper_layer(struct task_struct *task)
{
	struct inode *inode = BPF_CORE_READ(task, mm, exe_file, f_inode);
	struct dentry *upper = NULL;
	struct ovl_inode *oi;

	if (!inode || BPF_CORE_READ(inode, i_sb, s_magic) != OVERLAYFS_SUPER_MAGIC)
		return false;
	if (bpf_core_type_exists(struct ovl_inode)) {
		oi = container_of(inode, struct ovl_inode, vfs_inode);
		return BPF_CORE_READ(oi, __upperdentry) != NULL;
	}
	bpf_probe_read_kernel(&upper, sizeof(upper),
			      (void *)inode + bpf_core_type_size(struct inode));
	return upper != NULL;
}

SEC("tracepoint/sched/sched_process_exec")
int ig_sched_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 old_tid = ctx->old_pid;
	struct ig_exec_event *e;
	unsigned long arg_start, arg_end, len;

	/* The thread that called execve may have taken the leader's tid. */
	bpf_map_delete_elem(&exec_starts, &old_tid);
	if (gadget_should_discard_current(gadget_get_mntns_id()))
		return 0;

	e = exec_event_begin(0);
	if (!e)
		return 0;
	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end > arg_start ? arg_end - arg_start : 0;
	if (len > IG_EXEC_ARGS_MAX) {
		len = IG_EXEC_ARGS_MAX;
		e->flags |= IG_EXEC_ARGS_TRUNCATED;
	}
	if (len && !bpf_probe_read_user(e->args, len, (void *)arg_start))
		e->args_size = len;
	if (exe_in_upper_layer(task))
		e->flags |= IG_EXEC_UPPER_LAYER;
	exec_event_send(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: GPL-2.0 */
/* Who the current task is, as events carry it. */
#ifndef IG_TASK_H
#define IG_TASK_H

/*
 * Fills the pid, tid, uid, gid and comm fields of *e (an event, or any
 * struct with fields of those names) from the current task.
 */
#define gadget_fill_task(e)                                                   \
	do {                                                                  \
		__u64 __pid_tgid = bpf_get_current_pid_tgid();                \
		__u64 __uid_gid = bpf_get_current_uid_gid();                  \
                                                                              \
		(e)->pid = __pid_tgid >> 32;                                  \
		(e)->tid = (__u32)__pid_tgid;                                 \
		(e)->uid = (__u32)__uid_gid;                                  \
		(e)->gid = __uid_gid >> 32;                                   \
		bpf_get_current_comm((e)->comm, sizeof((e)->comm));           \
	} while (0)

/* x86-64: the user registers sit at the top of the task's kernel stack. */
#define IG_THREAD_SIZE (4096 << 2)

/*
 * The user registers the current task entered the kernel with: at a
 * syscall's exit they still hold its arguments (di, si, dx, r10, r8, r9;
 * the result is in ax, the number in orig_ax), so an exit program needs no
 * entry program to keep them. bpf_task_pt_regs where the kernel has it
 * (5.15+), else the same place found below the task's kernel stack.
 */
static __always_inline struct pt_regs *gadget_user_regs(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	void *stack;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	stack = BPF_CORE_READ(task, stack);
	if (!stack)
		return NULL;
	return (struct pt_regs *)(stack + IG_THREAD_SIZE) - 1;
}

#endif

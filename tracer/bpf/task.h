/* SPDX-License-Identifier: GPL-2.0 */
/* Who the current task is, as events carry it. */
#ifndef IG_TASK_H
#define IG_TASK_H

/*
 * Fills *p from the current task; mntns_id is passed in because every
 * gadget has already read it to filter.
 */
static __always_inline void gadget_fill_process(struct ig_process *p, __u64 mntns_id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	p->mntns_id = mntns_id;
	p->pid = pid_tgid >> 32;
	p->tid = (__u32)pid_tgid;
	p->ppid = 0;
	p->uid = (__u32)uid_gid;
	p->gid = uid_gid >> 32;
	p->pad = 0;
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/* Adds the parent (real_parent's thread group), for the gadgets that show it. */
static __always_inline void gadget_fill_parent(struct ig_process *p)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	p->ppid = BPF_CORE_READ(task, real_parent, tgid);
}

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

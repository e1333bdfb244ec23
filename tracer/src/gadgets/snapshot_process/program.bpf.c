// SPDX-License-Identifier: GPL-2.0
/*
 * snapshot process: every process (or thread) that exists now.
 *
 * Facility: a BPF task iterator (iter/task): the kernel walks its task list
 * and this program writes one fixed-size record per task into the
 * iterator's file, which userspace reads once. The container filter is on
 * each task's own mount namespace.
 */
#include "common.h"
#include "filter.h"
#include "program.h"

/* --threads: every thread, not only thread-group leaders */
const volatile bool gadget_threads = false;

SEC("iter/task")
int ig_snapshot_task(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct task_struct *task = ctx->task;
	struct ig_process e = {};

	if (!task)
		return 0;
	e.pid = task->tgid;
	e.tid = task->pid;
	if (!gadget_threads && e.pid != e.tid)
		return 0;
	e.mntns_id = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	/* kernel threads have no nsproxy of their own to speak of: keep them with --host */
	if (gadget_should_discard_mntns_id(e.mntns_id))
		return 0;
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.uid = BPF_CORE_READ(task, cred, uid.val);
	e.gid = BPF_CORE_READ(task, cred, gid.val);
	BPF_CORE_READ_STR_INTO(&e.comm, task, comm);
	if (gadget_should_discard_of(&e))
		return 0;
	bpf_seq_write(seq, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

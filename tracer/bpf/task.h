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

#endif

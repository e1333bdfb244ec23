/* SPDX-License-Identifier: GPL-2.0 */
/* trace oomkill: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_OOMKILL_H
#define IG_TRACE_OOMKILL_H

#include "types.h"

struct ig_oomkill_event {
	__u64 timestamp_ns;
	__u64 mntns_id; /* of the task that triggered the kill */
	__u64 pages;	/* the victim's resident pages (anon + file + shmem) */
	__u32 kpid;	/* the task that triggered the kill */
	__u32 tpid;	/* the victim */
	__u32 tuid;
	__s32 oom_score_adj;
	char kcomm[IG_TASK_COMM_LEN];
	char tcomm[IG_TASK_COMM_LEN];
};

#endif

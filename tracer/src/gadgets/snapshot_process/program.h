/* SPDX-License-Identifier: GPL-2.0 */
/* snapshot process: one record per task. Rust types are generated from this file. */
#ifndef IG_SNAPSHOT_PROCESS_H
#define IG_SNAPSHOT_PROCESS_H

#include "types.h"

struct ig_process_entry {
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 pad;
	char comm[IG_TASK_COMM_LEN];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* top file: the per-file counters userspace reads each interval. Rust types are generated from this file. */
#ifndef IG_TOP_FILE_H
#define IG_TOP_FILE_H

#include "types.h"

#define IG_TOPFILE_NAME_LEN 128

struct ig_topfile_key {
	__u32 pid;
	__u32 tid;
	__u64 dev;
	__u64 inode;
};

struct ig_topfile_value {
	__u64 reads;
	__u64 writes;
	__u64 rbytes;
	__u64 wbytes;
	__u64 mntns_id;
	__u32 type; /* 'R' regular file, 'S' socket, 'O' other */
	__u32 _pad;
	char comm[IG_TASK_COMM_LEN];
	char name[IG_TOPFILE_NAME_LEN];
};

#endif

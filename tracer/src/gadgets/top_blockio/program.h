/* SPDX-License-Identifier: GPL-2.0 */
/* top block-io: the per-process, per-device counters userspace reads each interval. Rust types are generated from this file. */
#ifndef IG_TOP_BLOCKIO_H
#define IG_TOP_BLOCKIO_H

#include "types.h"

struct ig_topblockio_key {
	__u32 pid;
	__u32 dev; /* the kernel's dev_t: major << 20 | minor */
	__u32 write;
	__u32 pad;
};

struct ig_topblockio_value {
	__u64 bytes;
	__u64 ns; /* summed from issue to completion */
	__u64 ios;
	__u64 mntns_id;
	char comm[IG_TASK_COMM_LEN];
};

#endif

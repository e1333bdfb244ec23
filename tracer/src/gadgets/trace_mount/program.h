/* SPDX-License-Identifier: GPL-2.0 */
/* trace mount: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_MOUNT_H
#define IG_TRACE_MOUNT_H

#include "types.h"

#define IG_MOUNT_STR 256
#define IG_MOUNT_FS 64

enum ig_mount_op {
	IG_MOUNT_MOUNT = 0,
	IG_MOUNT_UMOUNT = 1,
};

struct ig_mount_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__u64 flags;
	__u64 latency_ns;
	__s32 retval;
	__u32 op; /* enum ig_mount_op */
	char src[IG_MOUNT_STR];
	char dst[IG_MOUNT_STR];
	char fs[IG_MOUNT_FS];
	char data[IG_MOUNT_STR];
};

#endif

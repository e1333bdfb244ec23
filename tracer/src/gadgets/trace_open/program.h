/* SPDX-License-Identifier: GPL-2.0 */
/* trace open: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_OPEN_H
#define IG_TRACE_OPEN_H

#include "types.h"

struct ig_open_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__s32 retval;
	__u32 flags;
	__u32 mode;
	__u32 path_size;      /* bytes used in path, with the NUL */
	__u32 full_path_size; /* bytes used in full_path, 0 if not asked for */
	__u32 pad;
	char path[IG_PATH_MAX];
	char full_path[IG_PATH_MAX];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* trace fsslower: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_FSSLOWER_H
#define IG_TRACE_FSSLOWER_H

#include "types.h"

#define IG_FSSLOWER_NAME_LEN 128
#define IG_FS_NAME_LEN 16

enum ig_fs_op {
	IG_FS_READ = 'R',
	IG_FS_WRITE = 'W',
	IG_FS_OPEN = 'O',
	IG_FS_FSYNC = 'F',
};

struct ig_fsslower_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__u64 latency_ns;
	__s64 bytes;  /* read or written; 0 for open and fsync */
	__s64 offset; /* where the read or write started */
	__u32 op;     /* enum ig_fs_op */
	__u32 pad;
	char fs[IG_FS_NAME_LEN];
	char file[IG_FSSLOWER_NAME_LEN];
};

#endif

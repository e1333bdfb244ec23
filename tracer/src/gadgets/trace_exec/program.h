/* SPDX-License-Identifier: GPL-2.0 */
/* trace exec: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_EXEC_H
#define IG_TRACE_EXEC_H

#include "types.h"

/* Bytes of NUL-separated arguments kept per exec; more sets ARGS_TRUNCATED. */
#define IG_EXEC_ARGS_MAX 4096
/* Arguments read one by one from a failed exec's argv (no copy to read from). */
#define IG_EXEC_MAX_ARGV 64
#define IG_EXEC_ARG_MAX 256

enum ig_exec_flags {
	IG_EXEC_ARGS_TRUNCATED = 1,
	IG_EXEC_UPPER_LAYER = 2,
};

struct ig_exec_event {
	__u64 timestamp_ns; /* CLOCK_REALTIME is derived in userspace from boot time */
	struct ig_process process;
	__u32 loginuid;
	__u32 sessionid;
	__s32 retval;
	__u32 flags;
	__u32 args_size; /* bytes used in args */
	__u32 cwd_size;	 /* bytes used in cwd, 0 if not asked for */
	char args[IG_EXEC_ARGS_MAX];
	char cwd[IG_PATH_MAX];
};

#endif

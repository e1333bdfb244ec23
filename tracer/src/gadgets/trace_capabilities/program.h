/* SPDX-License-Identifier: GPL-2.0 */
/* trace capabilities: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_CAPABILITIES_H
#define IG_TRACE_CAPABILITIES_H

#include "types.h"

struct ig_capabilities_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__s32 cap;
	__s32 ret;     /* 0: granted, -EPERM: denied */
	__s64 syscall; /* the syscall the check happened in, -1 outside one */
	__s32 audit;   /* 1: audited, 0: CAP_OPT_NOAUDIT, -1: not known (tracepoint) */
	__u32 pad;
};

#endif

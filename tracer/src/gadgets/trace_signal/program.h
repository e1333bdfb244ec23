/* SPDX-License-Identifier: GPL-2.0 */
/* trace signal: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_SIGNAL_H
#define IG_TRACE_SIGNAL_H

#include "types.h"

enum ig_signal_call {
	IG_SIGNAL_KILL = 0,
	IG_SIGNAL_TKILL = 1,
	IG_SIGNAL_TGKILL = 2,
};

struct ig_signal_event {
	__u64 timestamp_ns;
	struct ig_process process; /* the sender */
	__s32 tpid;		   /* the target, as given (kill(2) takes 0 and negatives too) */
	__s32 sig;
	__s32 retval;
	__u32 call; /* enum ig_signal_call */
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's in-kernel counters: the key and the counters. Rust types are generated from this file. */
#ifndef IG_METRICS_COUNTERS_H
#define IG_METRICS_COUNTERS_H

#include "types.h"

enum ig_counter {
	IG_COUNTER_EXECS = 0,
	IG_COUNTER_FAILED_EXECS = 1,
	IG_COUNTER_OPENS = 2,
	IG_COUNTER_FAILED_OPENS = 3,
	IG_COUNTER_SIGNALS = 4,
	IG_COUNTER_TCP_CONNECTS = 5,
	IG_COUNTER_FAILED_TCP_CONNECTS = 6,
	IG_COUNTER_TCP_SENT_BYTES = 7,
	IG_COUNTER_TCP_RECEIVED_BYTES = 8,
	IG_COUNTER_TCP_ACCEPTS = 9,
	IG_COUNTER_OOM_KILLS = 10,
	IG_COUNTER_CAPABILITY_DENIALS = 11,
	IG_COUNTER_MAX = 12,
};

struct ig_counter_key {
	__u64 mntns_id;
	__u32 counter; /* enum ig_counter */
	__u32 pad;
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* trace tcpconnect: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_TCPCONNECT_H
#define IG_TRACE_TCPCONNECT_H

#include "types.h"

struct ig_tcpconnect_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__u64 netns_id;
	__u64 latency_ns; /* connect() to ESTABLISHED; 0 without --latency */
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif

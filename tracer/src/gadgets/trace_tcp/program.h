/* SPDX-License-Identifier: GPL-2.0 */
/* trace tcp: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_TCP_H
#define IG_TRACE_TCP_H

#include "types.h"

enum ig_tcp_op {
	IG_TCP_CONNECT = 0,
	IG_TCP_ACCEPT = 1,
	IG_TCP_CLOSE = 2,
};

struct ig_tcp_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__u64 netns_id;
	__u32 op; /* enum ig_tcp_op */
	__u16 family;
	__u16 sport; /* host byte order: the local end */
	__u16 dport; /* host byte order: the remote end */
	__u16 pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif

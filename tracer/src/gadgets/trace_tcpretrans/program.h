/* SPDX-License-Identifier: GPL-2.0 */
/* trace tcpretrans: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_TCPRETRANS_H
#define IG_TRACE_TCPRETRANS_H

#include "types.h"

struct ig_tcpretrans_event {
	__u64 timestamp_ns;
	struct ig_process process; /* the socket's owner (see sock_owners.h); 0s when not known */
	__u64 netns_id;
	__u16 family;
	__u16 sport;   /* host byte order: the local end */
	__u16 dport;   /* host byte order: the remote end */
	__u8 state;    /* the socket's TCP state */
	__u8 tcpflags; /* of the segment sent again */
	__u8 ca_state; /* the congestion state: 4 (Loss) after a timeout */
	__u8 owner_known;
	__u16 pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* trace tcpdrop: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_TCPDROP_H
#define IG_TRACE_TCPDROP_H

#include "types.h"

struct ig_tcpdrop_event {
	__u64 timestamp_ns;
	struct ig_process process; /* the socket's owner (see sock_owners.h); 0s when not known */
	__u64 netns_id;
	__u32 reason; /* enum skb_drop_reason; 0 where the kernel gives none */
	__u16 family;
	__u16 sport; /* host byte order: the packet's source */
	__u16 dport; /* host byte order: the packet's destination */
	__u8 state;  /* the socket's TCP state; 0 without a socket */
	__u8 tcpflags;
	__u8 owner_known;
	__u8 has_sock;
	__u16 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

#endif

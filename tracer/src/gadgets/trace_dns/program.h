/* SPDX-License-Identifier: GPL-2.0 */
/* trace dns: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_DNS_H
#define IG_TRACE_DNS_H

#include "types.h"

/* The DNS port: packets to or from it are DNS. */
#define IG_DNS_PORT 53
/*
 * DNS messages are copied up to this many bytes: the classic UDP limit.
 * A longer (EDNS) message is cut: msg_len < msg_total says so.
 */
#define IG_DNS_MAX_MSG 512

/* Packet types, numbered as AF_PACKET's sll_pkttype. */
enum ig_dns_pkt_type {
	IG_DNS_PKT_HOST = 0,
	IG_DNS_PKT_OUTGOING = 4,
};

struct ig_dns_event {
	__u64 timestamp_ns;
	/* The task that sends or receives the packet; 0 when it is not known. */
	struct ig_process process;
	__u64 netns_id;
	__u8 pkt_type; /* enum ig_dns_pkt_type */
	__u8 ipversion;
	__u16 sport;	 /* host byte order */
	__u16 dport;	 /* host byte order */
	__u16 msg_len;	 /* bytes of msg copied */
	__u16 msg_total; /* the message's length in the packet */
	__u16 pad[3];
	__u8 saddr[16];
	__u8 daddr[16];
	/* Only msg_len bytes are sent: the event is cut after them. */
	__u8 msg[IG_DNS_MAX_MSG];
};

#endif

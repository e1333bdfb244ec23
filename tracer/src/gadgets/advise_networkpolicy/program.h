/* SPDX-License-Identifier: GPL-2.0 */
/* advise network-policy: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_ADVISE_NETWORKPOLICY_H
#define IG_ADVISE_NETWORKPOLICY_H

#include "types.h"

/* Which way a connection was opened, seen from the pod. */
enum ig_netpol_direction {
	/* The pod's first packet of it left: the pod opened it. */
	IG_NETPOL_EGRESS = 1,
	/* The first arrived: the peer opened it. */
	IG_NETPOL_INGRESS = 2,
};

/* One new connection (a TCP SYN, a UDP flow's first packet) of a pod's network namespace. */
struct ig_netpol_event {
	__u64 timestamp_ns;
	/* The task sending the first packet, when it sent it itself; 0 otherwise. */
	struct ig_process process;
	__u64 netns_id;
	__u8 direction; /* enum ig_netpol_direction */
	__u8 proto;	/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 ipversion; /* 4 or 6 */
	__u8 pad;
	__u16 local_port;  /* host byte order */
	__u16 remote_port; /* host byte order */
	__u8 local_addr[16];
	__u8 remote_addr[16];
};

#endif

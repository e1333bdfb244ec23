/* SPDX-License-Identifier: GPL-2.0 */
/* top tcp: the per-connection counters userspace reads each interval. Rust types are generated from this file. */
#ifndef IG_TOP_TCP_H
#define IG_TOP_TCP_H

#include "types.h"

struct ig_toptcp_key {
	__u32 pid;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 _pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct ig_toptcp_value {
	__u64 sent;
	__u64 received;
	__u64 mntns_id;
	__u32 tid;
	__u32 _pad;
	char comm[IG_TASK_COMM_LEN];
};

#endif

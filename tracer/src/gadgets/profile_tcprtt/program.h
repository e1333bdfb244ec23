/* SPDX-License-Identifier: GPL-2.0 */
/* profile tcprtt: the histogram keys userspace reads at the end. Rust types are generated from this file. */
#ifndef IG_PROFILE_TCPRTT_H
#define IG_PROFILE_TCPRTT_H

#include "types.h"

/* One bucket of one histogram: whose (the socket's owner, or its network
 * namespace when the owner is not known), which address with -b/-B. */
struct ig_tcprtt_key {
	__u64 mntns_id; /* the owner's; 0 when not known */
	__u64 netns_id;
	__u8 addr[16]; /* with -b the local address, with -B the remote one; else zero */
	__u16 family;  /* of addr */
	__u16 pad;
	__u32 bucket; /* 0 holds [0, 1), k holds [2^(k-1), 2^k) in the unit */
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* profile block-io: the histogram userspace reads at the end. Rust types are generated from this file. */
#ifndef IG_PROFILE_BLOCKIO_H
#define IG_PROFILE_BLOCKIO_H

#include "types.h"

/* Buckets of the latency histogram in microseconds: 0 holds [0, 1), k holds [2^(k-1), 2^k). */
#define IG_HIST_BUCKETS 64
/* Histograms kept with --per-disk (one per device): buckets of all. */
#define IG_HIST_ENTRIES (IG_HIST_BUCKETS * 64)

/* A bucket of one device's histogram (dev 0: all devices together). */
struct ig_blockio_hist_key {
	__u32 dev; /* the kernel's dev_t: major << 20 | minor */
	__u32 bucket;
};

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * profile block-io: the distribution of block request latency (issue to
 * completion) of the selected containers' requests, in power-of-two
 * microsecond buckets, summed in the kernel per CPU; with --per-disk one
 * histogram per device.
 *
 * Facilities: block.h (block_rq_issue and block_rq_complete).
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; profile
 * gadgets send no events through them (their result is the histogram). */
#include "buffer.h"
#include "task.h"
#include "block.h"
#include "histogram.h"
#include "program.h"

/* --per-disk */
const volatile bool gadget_per_disk = false;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IG_HIST_ENTRIES);
	__type(key, struct ig_blockio_hist_key);
	__type(value, __u64);
} latency_hist SEC(".maps");

SEC("tracepoint/block/block_rq_complete")
int ig_block_rq_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	struct ig_blockio_hist_key key = {};
	struct gadget_block_start s;
	__u64 ns;

	if (!gadget_block_done(ctx, &s, &ns))
		return 0;
	key.bucket = gadget_bucket_of(ns / 1000);
	if (gadget_per_disk)
		key.dev = s.dev;
	gadget_count_in(&latency_hist, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

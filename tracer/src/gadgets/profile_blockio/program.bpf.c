// SPDX-License-Identifier: GPL-2.0
/*
 * profile block-io: the distribution of block request latency (issue to
 * completion) of the selected containers' requests, in power-of-two
 * microsecond buckets, summed in the kernel per CPU.
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
#include "program.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IG_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} latency_hist SEC(".maps");

/* 0 for 0, else 1 + floor(log2(v)): the bucket of v. */
static __always_inline __u32 bucket_of(__u64 v)
{
	__u32 b = 0;

	if (!v)
		return 0;
#pragma unroll
	for (int shift = 32; shift > 0; shift >>= 1) {
		if (v >= (1ULL << shift)) {
			v >>= shift;
			b += shift;
		}
	}
	return b + 1;
}

SEC("tracepoint/block/block_rq_complete")
int ig_block_rq_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	struct gadget_block_start s;
	__u64 ns, one = 1, *count;
	__u32 b;

	if (!gadget_block_done(ctx, &s, &ns))
		return 0;
	b = bucket_of(ns / 1000);
	count = bpf_map_lookup_elem(&latency_hist, &b);
	if (count)
		*count += 1; /* this CPU's own copy */
	else
		bpf_map_update_elem(&latency_hist, &b, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * top block-io: block device I/O per process and device (bytes, requests,
 * time from issue to completion), summed in the kernel; userspace reads and
 * clears the map every interval.
 *
 * Facilities: block.h (block_rq_issue and block_rq_complete).
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; top gadgets
 * send no events through them (their results are the counters map). */
#include "buffer.h"
#include "task.h"
#include "block.h"
#include "program.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ig_topblockio_key);
	__type(value, struct ig_topblockio_value);
} io_stats SEC(".maps");

SEC("tracepoint/block/block_rq_complete")
int ig_block_rq_complete(struct trace_event_raw_block_rq_completion *ctx)
{
	struct gadget_block_start s;
	struct ig_topblockio_key k = {};
	struct ig_topblockio_value *v;
	__u64 ns;

	if (!gadget_block_done(ctx, &s, &ns))
		return 0;
	k.pid = s.pid;
	k.dev = s.dev;
	k.write = s.write;
	v = bpf_map_lookup_elem(&io_stats, &k);
	if (!v) {
		struct ig_topblockio_value zero = {};

		zero.mntns_id = s.mntns_id;
		__builtin_memcpy(zero.comm, s.comm, sizeof(zero.comm));
		bpf_map_update_elem(&io_stats, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&io_stats, &k);
		if (!v)
			return 0;
	}
	__sync_fetch_and_add(&v->bytes, s.bytes);
	__sync_fetch_and_add(&v->ns, ns);
	__sync_fetch_and_add(&v->ios, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Block requests from issue to completion, for the block-io gadgets.
 *
 * Facilities: tracepoints block/block_rq_issue (the request goes to the
 * driver; the task it is issued in, its bytes) and block/block_rq_complete,
 * matched by device and sector. The task is the submitter for direct and
 * synchronous I/O, a kernel worker for writeback. The records differ
 * between kernels (rwbs grew from 8 to 10 bytes): fields are read through
 * CO-RE. The issue program is here; each gadget writes its own completion
 * program with gadget_block_done(). Needs filter.h.
 */
#ifndef IG_BLOCK_H
#define IG_BLOCK_H

struct gadget_block_key {
	__u64 sector;
	__u32 dev;
	__u32 pad;
};

struct gadget_block_start {
	__u64 ts;
	__u64 mntns_id;
	__u32 pid;
	__u32 bytes;
	__u32 write;
	__u32 dev; /* the kernel's dev_t: major << 20 | minor */
	char comm[IG_TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct gadget_block_key);
	__type(value, struct gadget_block_start);
} gadget_block_starts SEC(".maps");

/* rwbs: 'F' (flush) may come first, then R, W, D (discard) or N. */
static __always_inline int gadget_block_direction(const char *rwbs)
{
	char c[2];

	bpf_probe_read_kernel(c, sizeof(c), rwbs);
	if (c[0] == 'W' || (c[0] == 'F' && c[1] == 'W'))
		return 1;
	if (c[0] == 'R' || (c[0] == 'F' && c[1] == 'R'))
		return 0;
	return -1;
}

SEC("tracepoint/block/block_rq_issue")
int ig_block_rq_issue(struct trace_event_raw_block_rq *ctx)
{
	struct gadget_block_key key = {};
	struct gadget_block_start s = {};
	__u64 mntns_id = gadget_get_mntns_id();
	int write = gadget_block_direction((const char *)ctx + bpf_core_field_offset(ctx->rwbs));

	if (write < 0 || gadget_should_discard_current(mntns_id))
		return 0;
	key.dev = BPF_CORE_READ(ctx, dev);
	key.sector = BPF_CORE_READ(ctx, sector);
	s.ts = bpf_ktime_get_ns();
	s.mntns_id = mntns_id;
	s.pid = bpf_get_current_pid_tgid() >> 32;
	s.bytes = BPF_CORE_READ(ctx, bytes);
	s.write = write;
	s.dev = key.dev;
	bpf_get_current_comm(s.comm, sizeof(s.comm));
	bpf_map_update_elem(&gadget_block_starts, &key, &s, BPF_ANY);
	return 0;
}

/* block_rq_complete's record before Linux 5.17 (its own event class; later
 * block_rq_completion, shared with block_rq_error): the same fields. */
struct trace_event_raw_block_rq_complete {
	dev_t dev;
	sector_t sector;
} __attribute__((preserve_access_index));

/*
 * At a completion: the request's issue record (copied to *s) and the
 * nanoseconds it took; false for a request issued before the gadget
 * started or by a task it does not trace.
 */
static __always_inline bool gadget_block_done(struct trace_event_raw_block_rq_completion *ctx,
					      struct gadget_block_start *s, __u64 *ns)
{
	struct gadget_block_key key = {};
	struct gadget_block_start *found;

	if (bpf_core_type_exists(struct trace_event_raw_block_rq_completion)) {
		key.dev = BPF_CORE_READ(ctx, dev);
		key.sector = BPF_CORE_READ(ctx, sector);
	} else {
		struct trace_event_raw_block_rq_complete *old = (void *)ctx;

		key.dev = BPF_CORE_READ(old, dev);
		key.sector = BPF_CORE_READ(old, sector);
	}
	found = bpf_map_lookup_elem(&gadget_block_starts, &key);
	if (!found)
		return false;
	__builtin_memcpy(s, found, sizeof(*s));
	bpf_map_delete_elem(&gadget_block_starts, &key);
	*ns = bpf_ktime_get_ns() - s->ts;
	return true;
}

#endif

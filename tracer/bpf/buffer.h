/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The output buffer: one ring buffer per gadget run, with batched wake-ups.
 *
 * Waking the reader for every event costs about 2x on an open storm (an
 * irq_work plus a cross-CPU wake-up each time), so events are written with
 * BPF_RB_NO_WAKEUP until gadget_wakeup_bytes are pending, then the writer
 * forces one wake-up. The reader also drains on a short timer, which bounds
 * the latency of a quiet stream. gadget_wakeup_bytes = 0 wakes every time.
 *
 * Every event the ring buffer cannot take is counted in gadget_stats, which
 * userspace reads every second and reports: a loss is never silent.
 */
#ifndef IG_BUFFER_H
#define IG_BUFFER_H

const volatile __u64 gadget_wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	/* Resized by the loader; this is only the default. */
	__uint(max_entries, 4 * 1024 * 1024);
} gadget_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, IG_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} gadget_stats SEC(".maps");

static __always_inline void gadget_count(__u32 stat)
{
	__u64 *count = bpf_map_lookup_elem(&gadget_stats, &stat);

	if (count)
		(*count)++;
}

/* Copies size bytes of data into the ring buffer, counting a failure as lost. */
static __always_inline void gadget_output(void *data, __u64 size)
{
	__u64 flags = 0;

	if (gadget_wakeup_bytes) {
		__u64 pending = bpf_ringbuf_query(&gadget_events, BPF_RB_AVAIL_DATA);

		flags = pending + size >= gadget_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
							      : BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&gadget_events, data, size, flags))
		gadget_count(IG_STAT_LOST);
}

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * profile cpu: samples what every CPU runs at a fixed frequency (a perf
 * cpu-clock event per CPU), and counts, per task and pair of stacks (user
 * and kernel), how often the selected containers' tasks were on the CPU.
 * The stacks are stored once each in a stack-trace map; userspace
 * symbolizes them when the gadget stops.
 *
 * Facilities: perf events (perf_event_open, CONFIG_PERF_EVENTS), a
 * BPF_PROG_TYPE_PERF_EVENT program, bpf_get_stackid (Linux 4.6+).
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; samples
 * that do not fit in the counts map are counted as lost there. */
#include "buffer.h"
#include "task.h"
#include "program.h"

/* -U: no kernel stacks; -K: no user stacks. */
const volatile bool gadget_user_stacks = true;
const volatile bool gadget_kernel_stacks = true;

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 4096);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, IG_MAX_STACK_DEPTH * sizeof(__u64));
} gadget_stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ig_cpu_key);
	__type(value, __u64);
} cpu_samples SEC(".maps");

SEC("perf_event")
int ig_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ig_cpu_key key = {};
	__u64 one = 1, *count;

	/* The idle task: the CPU had nothing to run. */
	if ((__u32)pid_tgid == 0)
		return 0;
	key.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(key.mntns_id))
		return 0;
	key.pid = pid_tgid >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.user_stack_id =
		gadget_user_stacks ? bpf_get_stackid(ctx, &gadget_stacks, BPF_F_USER_STACK) : -1;
	key.kernel_stack_id = gadget_kernel_stacks ? bpf_get_stackid(ctx, &gadget_stacks, 0) : -1;

	count = bpf_map_lookup_elem(&cpu_samples, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	if (bpf_map_update_elem(&cpu_samples, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	/* Another CPU made it meanwhile, or the map is full. */
	count = bpf_map_lookup_elem(&cpu_samples, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		gadget_count(IG_STAT_LOST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

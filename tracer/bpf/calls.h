/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a syscall's enter program keeps for its exit program, per thread: a
 * hash map keyed by tid. Not task-local storage: that is Linux 5.11+, and
 * its creation fails (NULL) whenever another program holds the per-CPU
 * task-storage lock, which another gadget running at the same time does;
 * a hash map has neither limit. A map too full to keep a call is counted
 * as a lost event.
 */
#ifndef IG_CALLS_H
#define IG_CALLS_H

/* Threads that can be inside one traced syscall at the same time. */
#define IG_MAX_CALLS 16384

#define GADGET_CALLS_MAP(name, value_type)                                                         \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_HASH);                                                   \
		__uint(max_entries, IG_MAX_CALLS);                                                 \
		__type(key, __u32);                                                                \
		__type(value, value_type);                                                         \
	} name SEC(".maps")

/* Keeps *value for this thread's exit; a full map counts as a lost event. */
static __always_inline void gadget_call_begin(void *map, void *value)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(map, &tid, value, BPF_ANY))
		gadget_count(IG_STAT_LOST);
}

/*
 * Copies this thread's kept value to *out and forgets it; false if none.
 * size is a constant at every (inlined) call: the copy is plain loads and
 * stores, no helper call.
 */
static __always_inline bool gadget_call_end(void *map, void *out, __u32 size)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	void *value = bpf_map_lookup_elem(map, &tid);

	if (!value)
		return false;
	__builtin_memcpy(out, value, size);
	bpf_map_delete_elem(map, &tid);
	return true;
}

#endif

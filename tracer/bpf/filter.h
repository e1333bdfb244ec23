/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The mount-namespace filter. Userspace fills gadget_mntns_filter with the
 * mount namespace ids of the containers a run selects, and removes them when
 * the containers go (namespace ids are reused by the kernel). With --host and
 * a selection it holds the other way round the containers NOT selected, and
 * only those are dropped: host processes and the selected containers pass.
 * The switches are load-time constants, so with --host alone the verifier
 * drops the lookup entirely.
 */
#ifndef IG_FILTER_H
#define IG_FILTER_H

const volatile bool gadget_filter_by_mntns = false;
const volatile bool gadget_mntns_filter_excludes = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} gadget_mntns_filter SEC(".maps");

static __always_inline __u64 gadget_get_mntns_id(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/* True when the event of a task in mount namespace mntns_id must be dropped. */
static __always_inline bool gadget_should_discard_mntns_id(__u64 mntns_id)
{
	bool listed;

	if (!gadget_filter_by_mntns)
		return false;
	listed = bpf_map_lookup_elem(&gadget_mntns_filter, &mntns_id) != NULL;
	return gadget_mntns_filter_excludes ? listed : !listed;
}

#endif

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

/*
 * The process filters (--pid, --tid, --uid, --gid, --comm), checked after
 * the container filter. Load-time constants too: the verifier drops every
 * check that is not set, so a run without them pays nothing.
 */
const volatile __u32 gadget_filter_pid = 0;
const volatile __u32 gadget_filter_tid = 0;
const volatile bool gadget_filter_uid_set = false;
const volatile __u32 gadget_filter_uid = 0;
const volatile bool gadget_filter_gid_set = false;
const volatile __u32 gadget_filter_gid = 0;
const volatile bool gadget_filter_comm_set = false;
const volatile char gadget_filter_comm[16] = {};

static __always_inline bool gadget_process_filters_set(void)
{
	return gadget_filter_pid || gadget_filter_tid || gadget_filter_uid_set ||
	       gadget_filter_gid_set || gadget_filter_comm_set;
}

static __always_inline bool gadget_comm_differs(const char *comm)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (comm[i] != gadget_filter_comm[i])
			return true;
		if (!comm[i])
			return false;
	}
	return false;
}

/* True when the event of this process must be dropped. */
static __always_inline bool gadget_should_discard_process(__u32 pid, __u32 tid, __u32 uid,
							  __u32 gid, const char *comm)
{
	if (gadget_filter_pid && pid != gadget_filter_pid)
		return true;
	if (gadget_filter_tid && tid != gadget_filter_tid)
		return true;
	if (gadget_filter_uid_set && uid != gadget_filter_uid)
		return true;
	if (gadget_filter_gid_set && gid != gadget_filter_gid)
		return true;
	return gadget_filter_comm_set && gadget_comm_differs(comm);
}

/* Whether the process filters (--pid, --uid, --comm ...) drop *p. */
static __always_inline bool gadget_should_discard_of(const struct ig_process *p)
{
	return gadget_should_discard_process(p->pid, p->tid, p->uid, p->gid, p->comm);
}

/* The process filters for the current task. */
static __always_inline bool gadget_should_discard_current_process(void)
{
	__u64 pid_tgid, uid_gid;
	char comm[16] = {};

	if (!gadget_process_filters_set())
		return false;
	pid_tgid = bpf_get_current_pid_tgid();
	uid_gid = bpf_get_current_uid_gid();
	if (gadget_filter_comm_set)
		bpf_get_current_comm(comm, sizeof(comm));
	return gadget_should_discard_process(pid_tgid >> 32, (__u32)pid_tgid, (__u32)uid_gid,
					     uid_gid >> 32, comm);
}

/* The container filter, then the process filters, for the current task in mntns_id. */
static __always_inline bool gadget_should_discard_current(__u64 mntns_id)
{
	return gadget_should_discard_mntns_id(mntns_id) || gadget_should_discard_current_process();
}

#endif

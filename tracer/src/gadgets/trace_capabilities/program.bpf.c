// SPDX-License-Identifier: GPL-2.0
/*
 * trace capabilities: every capability check the kernel's commoncap makes,
 * with its verdict.
 *
 * Facility: the tracepoint capability/cap_capable (Linux 6.14 and later),
 * fired at the end of cap_capable() with the capability and the result.
 * The syscall being served comes from the task's saved registers
 * (bpf_task_pt_regs, orig_ax on x86-64). The tracepoint does not carry the
 * caller's CAP_OPT_NOAUDIT option, so whether a check would be audited is
 * not known here.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "program.h"

/* --unique: report each (process, capability) once. */
const volatile bool gadget_unique = false;

struct unique_key {
	__u32 pid;
	__s32 cap;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, struct unique_key);
	__type(value, __u8);
} seen SEC(".maps");

SEC("tracepoint/capability/cap_capable")
int ig_cap_capable(struct trace_event_raw_cap_capable *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct ig_capabilities_event e = {};
	struct task_struct *task;
	struct pt_regs *regs;

	e.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_mntns_id(e.mntns_id))
		return 0;
	e.pid = pid_tgid >> 32;
	e.cap = ctx->cap;
	if (gadget_unique) {
		struct unique_key key = { .pid = e.pid, .cap = e.cap };
		__u8 one = 1;

		if (bpf_map_lookup_elem(&seen, &key))
			return 0;
		bpf_map_update_elem(&seen, &key, &one, BPF_ANY);
	}
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	e.tid = (__u32)pid_tgid;
	e.uid = (__u32)uid_gid;
	e.gid = uid_gid >> 32;
	e.ret = ctx->ret;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	e.syscall = regs ? (__s64)BPF_CORE_READ(regs, orig_ax) : -1;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * trace capabilities: every capability check the kernel's commoncap makes,
 * with its verdict.
 *
 * Two variants, chosen at load time by what the kernel has:
 * - the tracepoint capability/cap_capable (Linux 6.16 in Debian's builds),
 *   fired at the end of cap_capable() with the capability and the result;
 *   it does not carry the caller's CAP_OPT_NOAUDIT option, so whether a
 *   check would be audited is not known (-1);
 * - a kprobe and a kretprobe on cap_capable() itself (every kernel with
 *   kprobes): the arguments at entry (capability, options), the verdict at
 *   return. --audit-only applies here.
 * The syscall being served comes from the task's saved registers (orig_ax
 * on x86-64, task.h).
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "calls.h"
#include "task.h"
#include "program.h"

/* --unique: report each (process, capability) once. */
const volatile bool gadget_unique = false;
/* --audit-only: leave out checks made with CAP_OPT_NOAUDIT (kprobe variant). */
const volatile bool gadget_audit_only = true;

#define CAP_OPT_NOAUDIT 0x2

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

/* The syscall the current task is in, from its saved user registers. */
static __always_inline __s64 current_syscall(void)
{
	struct pt_regs *regs = gadget_user_regs();

	return regs ? (__s64)BPF_CORE_READ(regs, orig_ax) : -1;
}

/* Sends one check, unless --unique has seen it already. */
static __always_inline void send_check(__s32 cap, __s32 ret, __s32 audit, __u64 mntns_id)
{
	struct ig_capabilities_event e = {};

	e.cap = cap;
	if (gadget_unique) {
		struct unique_key key = {.pid = bpf_get_current_pid_tgid() >> 32, .cap = cap};
		__u8 one = 1;

		if (bpf_map_lookup_elem(&seen, &key))
			return;
		bpf_map_update_elem(&seen, &key, &one, BPF_ANY);
	}
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e.process, mntns_id);
	e.ret = ret;
	e.audit = audit;
	e.syscall = current_syscall();
	gadget_output(&e, sizeof(e));
}

SEC("tracepoint/capability/cap_capable")
int ig_cap_capable(struct trace_event_raw_cap_capable *ctx)
{
	__u64 mntns_id = gadget_get_mntns_id();

	if (gadget_should_discard_current(mntns_id))
		return 0;
	send_check(ctx->cap, ctx->ret, -1, mntns_id);
	return 0;
}

struct cap_call {
	__u64 mntns_id;
	__s32 cap;
	__u32 opts;
};

GADGET_CALLS_MAP(cap_calls, struct cap_call);

/* int cap_capable(const struct cred *, struct user_namespace *, int cap, unsigned int opts) */
SEC("kprobe/cap_capable")
int ig_cap_capable_entry(struct pt_regs *ctx)
{
	struct cap_call call = {};

	call.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(call.mntns_id))
		return 0;
	call.cap = (__s32)PT_REGS_PARM3(ctx);
	call.opts = (__u32)PT_REGS_PARM4(ctx);
	if (gadget_audit_only && (call.opts & CAP_OPT_NOAUDIT))
		return 0;
	gadget_call_begin(&cap_calls, &call);
	return 0;
}

SEC("kretprobe/cap_capable")
int ig_cap_capable_exit(struct pt_regs *ctx)
{
	struct cap_call call;

	if (!gadget_call_end(&cap_calls, &call, sizeof(call)))
		return 0;
	send_check(call.cap, (__s32)PT_REGS_RC(ctx), !(call.opts & CAP_OPT_NOAUDIT), call.mntns_id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * trace signal: signals sent with kill, tkill and tgkill, with the result.
 *
 * Facilities: tracepoints syscalls/sys_{enter,exit}_{kill,tkill,tgkill}.
 * The sender is the current task; the target and signal come from the
 * arguments, the result from the exit.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "program.h"

/* --pid (filter.h): the sender, the task that calls kill. */
/* --signal: only this signal (0: all). */
const volatile __s32 gadget_signal = 0;
/* --failed-only */
const volatile bool gadget_failed_only = false;
/* --kill-only: only SIGKILL */
const volatile bool gadget_kill_only = false;

#define SIGKILL 9

struct signal_start {
	__u64 mntns_id;
	__s32 tpid;
	__s32 sig;
	__u32 call;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct signal_start);
} signal_starts SEC(".maps");

static __always_inline int signal_enter(__s32 tpid, __s32 sig, __u32 call)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct signal_start start = {.tpid = tpid, .sig = sig, .call = call};

	if (gadget_signal && sig != gadget_signal)
		return 0;
	if (gadget_kill_only && sig != SIGKILL)
		return 0;
	start.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(start.mntns_id))
		return 0;
	bpf_map_update_elem(&signal_starts, &tid, &start, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int ig_kill_enter(struct trace_event_raw_sys_enter *ctx)
{
	return signal_enter(ctx->args[0], ctx->args[1], IG_SIGNAL_KILL);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int ig_tkill_enter(struct trace_event_raw_sys_enter *ctx)
{
	return signal_enter(ctx->args[0], ctx->args[1], IG_SIGNAL_TKILL);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int ig_tgkill_enter(struct trace_event_raw_sys_enter *ctx)
{
	/* tgkill(tgid, tid, sig): the target reported is the thread */
	return signal_enter(ctx->args[1], ctx->args[2], IG_SIGNAL_TGKILL);
}

static __always_inline int signal_exit(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct signal_start *start = bpf_map_lookup_elem(&signal_starts, &tid);
	struct ig_signal_event e = {};

	if (!start)
		return 0;
	e.tpid = start->tpid;
	e.sig = start->sig;
	e.call = start->call;
	bpf_map_delete_elem(&signal_starts, &tid);
	if (gadget_failed_only && ret >= 0)
		return 0;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e.process, start->mntns_id);
	e.retval = ret;
	gadget_output(&e, sizeof(e));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int ig_kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return signal_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int ig_tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return signal_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int ig_tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return signal_exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * trace tcp: TCP connections connected (C), accepted (A) and closed (X).
 *
 * Facilities: tracepoints syscalls/sys_{enter,exit}_connect,
 * sys_exit_{accept,accept4} and sys_enter_close, all in the process's own
 * context (so the pid and its container are the right ones; sock tracepoints
 * can fire in softirq). Addresses come from the socket behind the
 * descriptor: SRC is the local end, DST the remote one. A close is reported
 * for established connections only.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "program.h"

#define TCP_ESTABLISHED 1
#define EINPROGRESS 115

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __s32);
} connect_fds SEC(".maps");

static __always_inline void emit(struct sock *sk, __u32 op, __u64 mntns_id)
{
	struct ig_tcp_event e = {};

	e.timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e.process, mntns_id);
	e.netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e.op = op;
	gadget_sock_ends(sk, &e.family, &e.sport, &e.dport, e.saddr, e.daddr);
	gadget_output(&e, sizeof(e));
}

SEC("tracepoint/syscalls/sys_enter_connect")
int ig_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__s32 fd = ctx->args[0];

	if (gadget_should_discard_current(gadget_get_mntns_id()))
		return 0;
	bpf_map_update_elem(&connect_fds, &tid, &fd, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int ig_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__s32 *fdp = bpf_map_lookup_elem(&connect_fds, &tid);
	struct sock *sk;
	__s32 fd;

	if (!fdp)
		return 0;
	fd = *fdp;
	bpf_map_delete_elem(&connect_fds, &tid);
	/* a non-blocking connect is under way too */
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	sk = gadget_tcp_sock_of(fd);
	if (sk)
		emit(sk, IG_TCP_CONNECT, gadget_get_mntns_id());
	return 0;
}

static __always_inline int accept_exit(long ret)
{
	__u64 mntns_id;
	struct sock *sk;

	if (ret < 0)
		return 0;
	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	sk = gadget_tcp_sock_of(ret);
	if (sk)
		emit(sk, IG_TCP_ACCEPT, mntns_id);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int ig_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int ig_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int ig_close_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 mntns_id = gadget_get_mntns_id();
	struct sock *sk;

	if (gadget_should_discard_current(mntns_id))
		return 0;
	sk = gadget_tcp_sock_of(ctx->args[0]);
	if (sk && BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_ESTABLISHED)
		emit(sk, IG_TCP_CLOSE, mntns_id);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

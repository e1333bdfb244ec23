// SPDX-License-Identifier: GPL-2.0
/*
 * top tcp: bytes sent and received per process and TCP connection, summed
 * in the kernel; userspace reads and clears the map every interval.
 *
 * Facility: the tracepoints sock/sock_send_length and sock/sock_recv_length
 * (fired by sock_sendmsg and sock_recvmsg in the caller's context, with the
 * socket and the length; MSG_PEEK reads are not counted).
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; top gadgets
 * send no events through them (their results are the counters map). */
#include "buffer.h"
#include "files.h"
#include "sockets.h"
#include "program.h"

#define MSG_PEEK 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ig_toptcp_key);
	__type(value, struct ig_toptcp_value);
} tcp_stats SEC(".maps");

static __always_inline int count(struct trace_event_raw_sock_msg_length *ctx, bool sent)
{
	struct ig_toptcp_key key = {};
	struct ig_toptcp_value *v, zero = {};
	__u64 pid_tgid, mntns_id;
	__u16 family;

	if (ctx->protocol != IG_IPPROTO_TCP || ctx->ret <= 0)
		return 0;
	if (!sent && (ctx->flags & MSG_PEEK))
		return 0;
	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_mntns_id(mntns_id))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	key.pid = pid_tgid >> 32;
	gadget_sock_ends((struct sock *)ctx->sk, &family, &key.sport, &key.dport, key.saddr, key.daddr);
	key.family = family;
	v = bpf_map_lookup_elem(&tcp_stats, &key);
	if (!v) {
		zero.mntns_id = mntns_id;
		zero.tid = (__u32)pid_tgid;
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&tcp_stats, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&tcp_stats, &key);
		if (!v)
			return 0;
	}
	if (sent)
		__sync_fetch_and_add(&v->sent, ctx->ret);
	else
		__sync_fetch_and_add(&v->received, ctx->ret);
	return 0;
}

SEC("tracepoint/sock/sock_send_length")
int ig_tcp_send(struct trace_event_raw_sock_msg_length *ctx)
{
	return count(ctx, true);
}

SEC("tracepoint/sock/sock_recv_length")
int ig_tcp_recv(struct trace_event_raw_sock_msg_length *ctx)
{
	return count(ctx, false);
}

char LICENSE[] SEC("license") = "GPL";

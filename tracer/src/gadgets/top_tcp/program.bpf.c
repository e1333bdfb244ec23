// SPDX-License-Identifier: GPL-2.0
/*
 * top tcp: bytes sent and received per process and TCP connection, summed
 * in the kernel; userspace reads and clears the map every interval.
 *
 * Two variants, chosen at load time by what the kernel has:
 * - the tracepoints sock/sock_send_length and sock/sock_recv_length (Linux
 *   6.3+; fired by sock_sendmsg and sock_recvmsg in the caller's context,
 *   with the socket and the length; MSG_PEEK reads are not counted);
 * - kprobes (every kernel with kprobes): tcp_sendmsg's socket at entry and
 *   its return value, and tcp_cleanup_rbuf(sk, copied) for what a read
 *   took (MSG_PEEK reads are counted there).
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; top gadgets
 * send no events through them (their results are the counters map). */
#include "buffer.h"
#include "files.h"
#include "sockets.h"
#include "calls.h"
#include "program.h"

#define MSG_PEEK 2

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct ig_toptcp_key);
	__type(value, struct ig_toptcp_value);
} tcp_stats SEC(".maps");

static __always_inline int count(struct sock *sk, long bytes, bool sent)
{
	struct ig_toptcp_key key = {};
	struct ig_toptcp_value *v, zero = {};
	__u64 pid_tgid, mntns_id;
	__u16 family;

	if (bytes <= 0)
		return 0;
	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	key.pid = pid_tgid >> 32;
	gadget_sock_ends(sk, &family, &key.sport, &key.dport, key.saddr, key.daddr);
	key.family = family;
	v = bpf_map_lookup_elem(&tcp_stats, &key);
	if (!v) {
		zero.mntns_id = mntns_id;
		zero.tid = (__u32)pid_tgid;
		bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&tcp_stats, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&tcp_stats, &key);
		if (!v) {
			/* The map is full until userspace next reads it. */
			gadget_count(IG_STAT_LOST);
			return 0;
		}
	}
	if (sent)
		__sync_fetch_and_add(&v->sent, bytes);
	else
		__sync_fetch_and_add(&v->received, bytes);
	return 0;
}

SEC("tracepoint/sock/sock_send_length")
int ig_tcp_send(struct trace_event_raw_sock_msg_length *ctx)
{
	if (ctx->protocol != IG_IPPROTO_TCP)
		return 0;
	return count((struct sock *)ctx->sk, ctx->ret, true);
}

SEC("tracepoint/sock/sock_recv_length")
int ig_tcp_recv(struct trace_event_raw_sock_msg_length *ctx)
{
	if (ctx->protocol != IG_IPPROTO_TCP || (ctx->flags & MSG_PEEK))
		return 0;
	return count((struct sock *)ctx->sk, ctx->ret, false);
}

/* The socket of a tcp_sendmsg in progress, for its return. */
GADGET_CALLS_MAP(send_calls, struct sock *);

/* int tcp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size) */
SEC("kprobe/tcp_sendmsg")
int ig_tcp_sendmsg_entry(struct pt_regs *ctx)
{
	struct sock *sk = (struct sock *)PT_REGS_PARM1(ctx);

	if (gadget_should_discard_current(gadget_get_mntns_id()))
		return 0;
	gadget_call_begin(&send_calls, &sk);
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int ig_tcp_sendmsg_exit(struct pt_regs *ctx)
{
	struct sock *sk;

	if (!gadget_call_end(&send_calls, &sk, sizeof(sk)))
		return 0;
	return count(sk, PT_REGS_RC(ctx), true);
}

/* void tcp_cleanup_rbuf(struct sock *sk, int copied) */
SEC("kprobe/tcp_cleanup_rbuf")
int ig_tcp_cleanup_rbuf(struct pt_regs *ctx)
{
	return count((struct sock *)PT_REGS_PARM1(ctx), (int)PT_REGS_PARM2(ctx), false);
}

char LICENSE[] SEC("license") = "GPL";

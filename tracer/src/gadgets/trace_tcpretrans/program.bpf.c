// SPDX-License-Identifier: GPL-2.0
/*
 * trace tcpretrans: TCP segments the kernel sends again.
 *
 * Facility: tracepoint tcp/tcp_retransmit_skb (every kernel since 4.15). It
 * fires in the retransmit timer or in the ACK processing of fast
 * retransmit, so the current task is rarely the socket's owner: the owner
 * comes from sock_owners.h. Ends and state are read from the socket, the
 * segment's flags from its control block (TCP_SKB_CB), the congestion state
 * from the connection (Loss after a timeout, Recovery in fast retransmit).
 * The tracepoint's record layout differs between kernels (a family and an
 * err field came later): only its first two pointers are read, which every
 * kernel has at the same place.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "sock_owners.h"
#include "program.h"

/* The start of the tracepoint's record on every kernel. */
struct retransmit_args {
	__u64 common;
	const void *skbaddr;
	const void *skaddr;
};

SEC("tracepoint/tcp/tcp_retransmit_skb")
int ig_tcp_retransmit(struct retransmit_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct sk_buff *skb = (struct sk_buff *)ctx->skbaddr;
	const struct ig_process *o = gadget_owner_of(sk);
	struct inet_connection_sock *icsk = (struct inet_connection_sock *)sk;
	struct ig_tcpretrans_event e = {};
	__u32 flags_off;

	if (!sk || gadget_discard_owner(o))
		return 0;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	if (o) {
		e.process = *o;
		e.owner_known = 1;
	}
	e.netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	gadget_sock_ends(sk, &e.family, &e.sport, &e.dport, e.saddr, e.daddr);
	e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e.ca_state = BPF_CORE_READ_BITFIELD_PROBED(icsk, icsk_ca_state);
	if (skb) {
		/* tcp_flags is a u8 before Linux 6.5 and a u16 after: its low byte
		 * holds FIN..CWR either way (little-endian). */
		flags_off = bpf_core_field_offset(struct sk_buff, cb) +
			    bpf_core_field_offset(struct tcp_skb_cb, tcp_flags);
		bpf_probe_read_kernel(&e.tcpflags, 1, (void *)skb + flags_off);
	}
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

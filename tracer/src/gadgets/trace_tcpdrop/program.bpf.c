// SPDX-License-Identifier: GPL-2.0
/*
 * trace tcpdrop: TCP packets the kernel drops, with its reason.
 *
 * Facility: tracepoint skb/kfree_skb: every packet freed as dropped (a
 * packet consumed normally goes through consume_skb instead). The reason
 * (enum skb_drop_reason) came with Linux 5.17; before it there is none.
 * Only IPv4/IPv6 packets carrying TCP are reported: the ends and flags come
 * from the packet's own headers (SRC is its sender). The socket is the
 * packet's own (an outgoing one), or the receiving one the kernel names
 * (rx_sk, Linux 6.13+); its owner comes from sock_owners.h. A packet for no
 * socket (a closed port) has no process: userspace names the container by
 * the network namespace the packet was dropped in.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "sock_owners.h"
#include "program.h"

#define IG_ETH_P_IP 0x0800
#define IG_ETH_P_IPV6 0x86DD

/* The network header of the packet: IPv4 or IPv6, then TCP's first 14 bytes. */
static __always_inline bool read_headers(struct sk_buff *skb, __u16 proto,
					 struct ig_tcpdrop_event *e)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 nh_off = BPF_CORE_READ(skb, network_header);
	unsigned char *nh = head + nh_off;
	unsigned char *th;
	__u8 tcp[14];

	if (!head || nh_off == (__u16)~0U)
		return false;
	if (proto == IG_ETH_P_IP) {
		struct iphdr ip;

		if (bpf_probe_read_kernel(&ip, sizeof(ip), nh) || ip.version != 4 ||
		    ip.protocol != IG_IPPROTO_TCP)
			return false;
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip.saddr, 4);
		__builtin_memcpy(e->daddr, &ip.daddr, 4);
		th = nh + ip.ihl * 4;
	} else {
		struct ipv6hdr ip6;

		if (bpf_probe_read_kernel(&ip6, sizeof(ip6), nh) || ip6.nexthdr != IG_IPPROTO_TCP)
			return false;
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, &ip6.saddr, 16);
		__builtin_memcpy(e->daddr, &ip6.daddr, 16);
		th = nh + sizeof(ip6);
	}
	if (bpf_probe_read_kernel(tcp, sizeof(tcp), th))
		return false;
	e->sport = (tcp[0] << 8) | tcp[1];
	e->dport = (tcp[2] << 8) | tcp[3];
	e->tcpflags = tcp[13];
	return true;
}

SEC("tracepoint/skb/kfree_skb")
int ig_kfree_skb(struct trace_event_raw_kfree_skb *ctx)
{
	__u16 proto = BPF_CORE_READ(ctx, protocol);
	struct sk_buff *skb = BPF_CORE_READ(ctx, skbaddr);
	const struct ig_process *o;
	struct ig_tcpdrop_event e = {};
	struct sock *sk;
	struct net_device *dev;

	if (proto != IG_ETH_P_IP && proto != IG_ETH_P_IPV6)
		return 0;
	if (!read_headers(skb, proto, &e))
		return 0;
	sk = BPF_CORE_READ(skb, sk);
	if (!sk && bpf_core_field_exists(ctx->rx_sk))
		sk = BPF_CORE_READ(ctx, rx_sk);
	o = gadget_owner_of(sk);
	if (gadget_discard_owner(o))
		return 0;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	if (o) {
		e.process = *o;
		e.owner_known = 1;
	}
	if (bpf_core_field_exists(ctx->reason))
		e.reason = BPF_CORE_READ(ctx, reason);
	if (sk) {
		e.has_sock = 1;
		e.state = BPF_CORE_READ(sk, __sk_common.skc_state);
		e.netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	} else {
		dev = BPF_CORE_READ(skb, dev);
		if (dev)
			e.netns_id = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	}
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

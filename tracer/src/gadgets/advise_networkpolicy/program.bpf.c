// SPDX-License-Identifier: GPL-2.0
/*
 * advise network-policy: the connections each selected pod opens and
 * accepts, as packets in its own network namespace.
 *
 * Facilities: the raw tracepoints net_dev_queue (a packet leaves a device)
 * and netif_receive_skb (one arrives), as trace dns. A pod's traffic with
 * anything but itself crosses its own devices, so both ends of every
 * connection it has are seen there, whatever API its program used
 * (connect, sendmsg, io_uring). Only the network namespaces of selected
 * pods (the pod_netns map, filled by userspace as their records arrive)
 * count; loopback devices do not (a policy never restricts a pod talking
 * to itself).
 *
 * A connection is told by its first packet: a TCP SYN (without ACK), or a
 * UDP packet of a flow (local and remote address and port) not seen yet;
 * whether it left or arrived says who opened it. Each is sent once: the
 * flows map keeps them (LRU: a flow forgotten and seen again is sent
 * again, which userspace merges). Every other packet costs the header
 * read and, for UDP, a lookup.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "program.h"

#define IG_IPPROTO_TCP 6
#define IG_IPPROTO_UDP 17
#define IG_IFF_LOOPBACK 0x8
#define IG_TCP_FLAG_SYN 0x02
#define IG_TCP_FLAG_ACK 0x10

/* Network namespaces of selected pods. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} pod_netns SEC(".maps");

struct flow_key {
	__u64 netns_id;
	__u8 local_addr[16];
	__u8 remote_addr[16];
	__u16 local_port;
	__u16 remote_port;
	__u8 proto;
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, __u8);
} flows SEC(".maps");

/* What the headers say. */
struct packet {
	__u8 proto;
	__u8 ipversion;
	__u8 tcp_flags;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

union ip_headers {
	__u8 first;
	struct iphdr v4;
	struct ipv6hdr v6;
};

/*
 * Reads the IP header at ip and the ports (and TCP flags) after it;
 * false for anything but TCP and UDP (and later IPv4 fragments, which
 * have no ports). IPv6 extension headers are not followed.
 */
static __always_inline bool parse(struct packet *p, unsigned long ip)
{
	union ip_headers h;
	/* The ports, then for TCP seq, ack_seq, the offset byte and the flags. */
	__u8 l4[14];
	unsigned long l4_at;

	if (bpf_probe_read_kernel(&h, sizeof(h), (void *)ip))
		return false;
	if ((h.first >> 4) == 4) {
		if (bpf_ntohs(h.v4.frag_off) & 0x1fff)
			return false;
		p->proto = h.v4.protocol;
		p->ipversion = 4;
		__builtin_memcpy(p->saddr, &h.v4.saddr, 4);
		__builtin_memcpy(p->daddr, &h.v4.daddr, 4);
		l4_at = ip + h.v4.ihl * 4;
	} else if ((h.first >> 4) == 6) {
		p->proto = h.v6.nexthdr;
		p->ipversion = 6;
		__builtin_memcpy(p->saddr, &h.v6.saddr, 16);
		__builtin_memcpy(p->daddr, &h.v6.daddr, 16);
		l4_at = ip + sizeof(h.v6);
	} else {
		return false;
	}
	if (p->proto != IG_IPPROTO_TCP && p->proto != IG_IPPROTO_UDP)
		return false;
	if (bpf_probe_read_kernel(l4, p->proto == IG_IPPROTO_TCP ? 14 : 4, (void *)l4_at))
		return false;
	p->sport = ((__u16)l4[0] << 8) | l4[1];
	p->dport = ((__u16)l4[2] << 8) | l4[3];
	p->tcp_flags = p->proto == IG_IPPROTO_TCP ? l4[13] : 0;
	return true;
}

static __always_inline void seen(struct sk_buff *skb, unsigned long ip, __u8 direction)
{
	struct task_struct *task;
	struct flow_key key = {};
	struct ig_netpol_event e = {};
	struct packet p = {};
	__u8 one = 1;

	if (!parse(&p, ip))
		return;
	if (p.proto == IG_IPPROTO_TCP &&
	    (p.tcp_flags & (IG_TCP_FLAG_SYN | IG_TCP_FLAG_ACK)) != IG_TCP_FLAG_SYN)
		return;
	key.netns_id = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	if (!bpf_map_lookup_elem(&pod_netns, &key.netns_id))
		return;
	if (BPF_CORE_READ(skb, dev, flags) & IG_IFF_LOOPBACK)
		return;
	key.proto = p.proto;
	if (direction == IG_NETPOL_EGRESS) {
		__builtin_memcpy(key.local_addr, p.saddr, 16);
		__builtin_memcpy(key.remote_addr, p.daddr, 16);
		key.local_port = p.sport;
		key.remote_port = p.dport;
	} else {
		__builtin_memcpy(key.local_addr, p.daddr, 16);
		__builtin_memcpy(key.remote_addr, p.saddr, 16);
		key.local_port = p.dport;
		key.remote_port = p.sport;
	}
	/* Only the first: BPF_NOEXIST fails for a flow another CPU just added. */
	if (bpf_map_lookup_elem(&flows, &key) ||
	    bpf_map_update_elem(&flows, &key, &one, BPF_NOEXIST))
		return;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	e.netns_id = key.netns_id;
	e.direction = direction;
	e.proto = p.proto;
	e.ipversion = p.ipversion;
	e.local_port = key.local_port;
	e.remote_port = key.remote_port;
	__builtin_memcpy(e.local_addr, key.local_addr, 16);
	__builtin_memcpy(e.remote_addr, key.remote_addr, 16);
	/* A packet leaving in its sender's own syscall names the sender. */
	task = (struct task_struct *)bpf_get_current_task();
	if (direction == IG_NETPOL_EGRESS && (bpf_get_current_pid_tgid() >> 32) != 0 &&
	    BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) == key.netns_id) {
		gadget_fill_process(&e.process, gadget_get_mntns_id());
	}
	gadget_output(&e, sizeof(e));
}

SEC("raw_tracepoint/net_dev_queue")
int ig_netpol_egress(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	unsigned long head = (unsigned long)BPF_CORE_READ(skb, head);

	seen(skb, head + BPF_CORE_READ(skb, network_header), IG_NETPOL_EGRESS);
	return 0;
}

SEC("raw_tracepoint/netif_receive_skb")
int ig_netpol_ingress(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];

	/* The link-layer header is already pulled: data is the IP header. */
	seen(skb, (unsigned long)BPF_CORE_READ(skb, data), IG_NETPOL_INGRESS);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

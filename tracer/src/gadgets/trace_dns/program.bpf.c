// SPDX-License-Identifier: GPL-2.0
/*
 * trace dns: DNS queries and answers (UDP, port 53) as packets, in every
 * network namespace, a container's own included.
 *
 * Facilities: the raw tracepoints net_dev_queue (a packet leaves a device:
 * OUTGOING) and netif_receive_skb (a packet arrives on one: HOST). They see
 * every device of every network namespace without a socket per namespace,
 * so starting costs the same with 0 or 1000 containers. Raw tracepoints hand
 * over the skb without filling a trace record first, which is most of what
 * a classic tracepoint would cost every other packet. On loopback a packet
 * is seen leaving and arriving, once for its sender and once for its
 * receiver.
 *
 * Who owns a packet: one leaving is sent in the sending task's own syscall,
 * so that task is its owner (when it runs in the packet's network
 * namespace; otherwise the packet left later, from softirq, and the owner
 * recorded for its port is used). Each owner is remembered by (netns, local
 * port), which names the receiver of the answers. A DNS server's socket is
 * remembered when it binds port 53 (the syscall tracepoint sys_enter_bind:
 * binds are rare, the receive path stays free), or else from its first
 * answer. The mount-namespace filter applies to the owner: a container's
 * packets are the ones its tasks send and receive, whatever network
 * namespace they use.
 *
 * Every packet of the node runs these two programs: a packet that is not
 * DNS costs two or three small reads (the skb's data pointer, the headers).
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "program.h"

#define IG_IPPROTO_UDP 17

struct owner_key {
	__u64 netns_id;
	__u32 port;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct owner_key);
	__type(value, struct ig_process);
} owners SEC(".maps");

/*
 * The event is larger than the stack: it is built here. The slack lets the
 * copy length be bounded with a mask (2 * IG_DNS_MAX_MSG - 1), which the
 * verifier follows whatever register clang keeps it in (a compare on a copy
 * it would not).
 */
struct scratch_event {
	struct ig_dns_event e;
	__u8 slack[IG_DNS_MAX_MSG];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

/* What the headers say, before the event is built. */
struct headers {
	__u8 ipversion;
	__u16 sport;
	__u16 dport;
	__u16 msg_total;
	__u8 saddr[16];
	__u8 daddr[16];
};

static __always_inline bool discard_owner(const struct ig_process *o)
{
	/* A packet nobody is known to own is a host packet. */
	if (!o)
		return (gadget_filter_by_mntns && !gadget_mntns_filter_excludes) ||
		       gadget_process_filters_set();
	return gadget_should_discard_mntns_id(o->mntns_id) || gadget_should_discard_of(o);
}

/* The IP and UDP headers of a packet without IP options, read at once. */
union ip_udp {
	__u8 first;
	struct {
		struct iphdr ip;
		struct udphdr udp;
	} v4;
	struct {
		struct ipv6hdr ip;
		struct udphdr udp;
	} v6;
};

/*
 * Reads the IP and UDP headers at ip into h; returns the address of the DNS
 * message, or 0 when the packet is not UDP to or from the DNS port (or is a
 * later IPv4 fragment, which has no UDP header). Every other packet leaves
 * here after one read (48 bytes: the head buffer of an skb always has more
 * after its data).
 */
static __always_inline unsigned long parse_headers(struct headers *h, unsigned long ip)
{
	union ip_udp p;
	struct udphdr uh;
	unsigned long udp;

	if (bpf_probe_read_kernel(&p, sizeof(p), (void *)ip))
		return 0;
	if ((p.first >> 4) == 4) {
		if (p.v4.ip.protocol != IG_IPPROTO_UDP || (bpf_ntohs(p.v4.ip.frag_off) & 0x1fff))
			return 0;
		h->ipversion = 4;
		__builtin_memcpy(h->saddr, &p.v4.ip.saddr, 4);
		__builtin_memcpy(h->daddr, &p.v4.ip.daddr, 4);
		udp = ip + p.v4.ip.ihl * 4;
		uh = p.v4.udp;
		/* With IP options the UDP header is further on. */
		if (p.v4.ip.ihl != 5 && bpf_probe_read_kernel(&uh, sizeof(uh), (void *)udp))
			return 0;
	} else if ((p.first >> 4) == 6) {
		/* Extension headers before UDP are not followed. */
		if (p.v6.ip.nexthdr != IG_IPPROTO_UDP)
			return 0;
		h->ipversion = 6;
		__builtin_memcpy(h->saddr, &p.v6.ip.saddr, 16);
		__builtin_memcpy(h->daddr, &p.v6.ip.daddr, 16);
		udp = ip + sizeof(p.v6.ip);
		uh = p.v6.udp;
	} else {
		return 0;
	}
	h->sport = bpf_ntohs(uh.source);
	h->dport = bpf_ntohs(uh.dest);
	if (h->sport != IG_DNS_PORT && h->dport != IG_DNS_PORT)
		return 0;
	if (bpf_ntohs(uh.len) < sizeof(uh))
		return 0;
	h->msg_total = bpf_ntohs(uh.len) - sizeof(uh);
	return udp + sizeof(uh);
}

/*
 * Builds the event of a DNS packet from its headers, its owner (NULL when
 * not known) and its message, copied up to the end of the linear data; sends it.
 */
static __always_inline void emit(const struct headers *h, __u64 netns_id, __u8 pkt_type,
				 const struct ig_process *o, unsigned long msg, unsigned long end)
{
	__u64 n = end > msg ? end - msg : 0;
	struct scratch_event *s;
	struct ig_dns_event *e;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return;
	e = &s->e;
	__builtin_memset(e, 0, offsetof(struct ig_dns_event, msg));
	if (o)
		e->process = *o;
	e->netns_id = netns_id;
	e->pkt_type = pkt_type;
	e->ipversion = h->ipversion;
	e->sport = h->sport;
	e->dport = h->dport;
	e->msg_total = h->msg_total;
	__builtin_memcpy(e->saddr, h->saddr, 16);
	__builtin_memcpy(e->daddr, h->daddr, 16);
	if (n > h->msg_total)
		n = h->msg_total;
	if (n > IG_DNS_MAX_MSG)
		n = IG_DNS_MAX_MSG;
	/* In asm, so that it is the register passed on that is masked. */
	asm volatile("%0 &= 1023" : "+r"(n));
	if (bpf_probe_read_kernel(e->msg, n, (void *)msg))
		n = 0;
	e->msg_len = n;
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_output(e, offsetof(struct ig_dns_event, msg) + n);
}

SEC("raw_tracepoint/net_dev_queue")
int ig_dns_egress(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long head = (unsigned long)BPF_CORE_READ(skb, head);
	unsigned long msg, end;
	struct headers h = {};
	struct owner_key key = {};
	struct ig_process current = {};
	const struct ig_process *o = NULL;

	msg = parse_headers(&h, head + BPF_CORE_READ(skb, network_header));
	if (!msg)
		return 0;
	end = head + BPF_CORE_READ(skb, tail);
	key.netns_id = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	key.port = h.sport;
	if ((bpf_get_current_pid_tgid() >> 32) != 0 &&
	    BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) == key.netns_id) {
		gadget_fill_process(&current, gadget_get_mntns_id());
		if (!discard_owner(&current))
			bpf_map_update_elem(&owners, &key, &current, BPF_ANY);
		o = &current;
	} else {
		o = bpf_map_lookup_elem(&owners, &key);
	}
	if (discard_owner(o))
		return 0;
	emit(&h, key.netns_id, IG_DNS_PKT_OUTGOING, o, msg, end);
	return 0;
}

SEC("raw_tracepoint/netif_receive_skb")
int ig_dns_ingress(struct bpf_raw_tracepoint_args *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx->args[0];
	/* The link-layer header is already pulled: data is the IP header. */
	unsigned long data = (unsigned long)BPF_CORE_READ(skb, data);
	unsigned long msg, end;
	struct headers h = {};
	struct owner_key key = {};
	const struct ig_process *o;

	msg = parse_headers(&h, data);
	if (!msg)
		return 0;
	end = (unsigned long)BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, tail);
	key.netns_id = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	key.port = h.dport;
	o = bpf_map_lookup_elem(&owners, &key);
	if (discard_owner(o))
		return 0;
	emit(&h, key.netns_id, IG_DNS_PKT_HOST, o, msg, end);
	return 0;
}

/*
 * A task binding a UDP socket to the DNS port owns that port: queries
 * arriving for it are its own. Read at entry (the address is in the task's
 * memory); a bind that then fails leaves an entry nothing will match.
 */
SEC("tracepoint/syscalls/sys_enter_bind")
int ig_dns_bind(struct trace_event_raw_sys_enter *ctx)
{
	__u64 mntns_id = gadget_get_mntns_id();
	struct owner_key key = {};
	struct ig_process o = {};
	struct socket *sock;
	struct file *file;
	struct sock *sk;
	/* sa_family and, for AF_INET and AF_INET6, the port. */
	__u16 addr[2];

	if (bpf_probe_read_user(addr, sizeof(addr), (const void *)ctx->args[1]) ||
	    (addr[0] != AF_INET && addr[0] != AF_INET6) || bpf_ntohs(addr[1]) != IG_DNS_PORT)
		return 0;
	if (gadget_should_discard_mntns_id(mntns_id))
		return 0;
	file = gadget_current_file(ctx->args[0]);
	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & IG_S_IFMT) != IG_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IG_IPPROTO_UDP)
		return 0;
	key.netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	key.port = IG_DNS_PORT;
	gadget_fill_process(&o, mntns_id);
	bpf_map_update_elem(&owners, &key, &o, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

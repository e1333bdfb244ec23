// SPDX-License-Identifier: GPL-2.0
/*
 * trace dns: DNS queries and answers (UDP, port 53) as packets, in every
 * network namespace, a container's own included.
 *
 * Facilities: the tracepoints net/net_dev_queue (a packet leaves a device:
 * OUTGOING) and net/netif_receive_skb (a packet arrives on one: HOST). They
 * see every device of every network namespace without a socket per
 * namespace, so starting costs the same with 0 or 1000 containers. On
 * loopback a packet is seen leaving and arriving, once for its sender and
 * once for its receiver.
 *
 * Who owns a packet: one leaving is sent in the sending task's own syscall,
 * so that task is its owner (when it runs in the packet's network
 * namespace; otherwise the packet left later, from softirq, and the owner
 * recorded for its port is used). Each owner is remembered by (netns, local
 * port), which names the receiver of the answers; a DNS server's socket is
 * remembered when it calls recv*() on port 53. The mount-namespace filter
 * applies to the owner: a container's packets are the ones its tasks send
 * and receive, whatever network namespace they use.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "files.h"
#include "program.h"

#define IG_IPPROTO_UDP 17
#define IG_S_IFMT 00170000
#define IG_S_IFSOCK 0140000

struct owner_key {
	__u64 netns_id;
	__u32 port;
	__u32 pad;
};

struct owner {
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__u32 gid;
	char comm[IG_TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct owner_key);
	__type(value, struct owner);
} owners SEC(".maps");

/*
 * The event is larger than the stack: it is built here. The slack lets the
 * copy length be bounded with a mask, which the verifier follows whatever
 * register clang keeps it in (a compare on a copy it would not). The mask is
 * 2 * IG_DNS_MAX_MSG - 1.
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

static __always_inline void owner_of_current(struct owner *o, __u64 mntns_id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	o->mntns_id = mntns_id;
	o->pid = pid_tgid >> 32;
	o->tid = (__u32)pid_tgid;
	o->uid = (__u32)uid_gid;
	o->gid = uid_gid >> 32;
	bpf_get_current_comm(o->comm, sizeof(o->comm));
}

/*
 * Reads the IP and UDP headers at ip into e; returns the address of the DNS
 * message, or 0 when the packet is not UDP to or from the DNS port (or is a
 * later IPv4 fragment, which has no UDP header).
 */
static __always_inline unsigned long parse_headers(struct ig_dns_event *e, unsigned long ip)
{
	unsigned long udp;
	struct udphdr uh;
	__u8 first;

	if (bpf_probe_read_kernel(&first, 1, (void *)ip))
		return 0;
	if ((first >> 4) == 4) {
		struct iphdr h;

		if (bpf_probe_read_kernel(&h, sizeof(h), (void *)ip) || h.protocol != IG_IPPROTO_UDP ||
		    (bpf_ntohs(h.frag_off) & 0x1fff))
			return 0;
		e->ipversion = 4;
		__builtin_memcpy(e->saddr, &h.saddr, 4);
		__builtin_memcpy(e->daddr, &h.daddr, 4);
		udp = ip + h.ihl * 4;
	} else if ((first >> 4) == 6) {
		struct ipv6hdr h;

		/* Extension headers before UDP are not followed. */
		if (bpf_probe_read_kernel(&h, sizeof(h), (void *)ip) || h.nexthdr != IG_IPPROTO_UDP)
			return 0;
		e->ipversion = 6;
		__builtin_memcpy(e->saddr, &h.saddr, 16);
		__builtin_memcpy(e->daddr, &h.daddr, 16);
		udp = ip + sizeof(h);
	} else {
		return 0;
	}
	if (bpf_probe_read_kernel(&uh, sizeof(uh), (void *)udp))
		return 0;
	e->sport = bpf_ntohs(uh.source);
	e->dport = bpf_ntohs(uh.dest);
	if (e->sport != IG_DNS_PORT && e->dport != IG_DNS_PORT)
		return 0;
	if (bpf_ntohs(uh.len) < sizeof(uh))
		return 0;
	e->msg_total = bpf_ntohs(uh.len) - sizeof(uh);
	return udp + sizeof(uh);
}

/* Copies the message (up to the end of the linear data) and sends e. */
static __always_inline void emit(struct ig_dns_event *e, const struct owner *o, unsigned long msg, unsigned long end)
{
	__u64 n = end > msg ? end - msg : 0;

	if (o) {
		e->mntns_id = o->mntns_id;
		e->pid = o->pid;
		e->tid = o->tid;
		e->uid = o->uid;
		e->gid = o->gid;
		__builtin_memcpy(e->comm, o->comm, sizeof(e->comm));
	}
	if (n > e->msg_total)
		n = e->msg_total;
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

/* The per-cpu event with its header zeroed, or NULL. */
static __always_inline struct ig_dns_event *new_event(void)
{
	__u32 zero = 0;
	struct scratch_event *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return NULL;
	__builtin_memset(&s->e, 0, offsetof(struct ig_dns_event, msg));
	return &s->e;
}

static __always_inline bool discard_owner(const struct owner *o)
{
	return gadget_filter_by_mntns && (!o || gadget_should_discard_mntns_id(o->mntns_id));
}

SEC("tracepoint/net/net_dev_queue")
int ig_dns_egress(struct trace_event_raw_net_dev_template *ctx)
{
	struct sk_buff *skb = ctx->skbaddr;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long head = (unsigned long)BPF_CORE_READ(skb, head);
	unsigned long msg, end = head + BPF_CORE_READ(skb, tail);
	struct owner_key key = {};
	struct owner current = {};
	const struct owner *o = NULL;
	struct ig_dns_event *e = new_event();

	if (!e)
		return 0;
	msg = parse_headers(e, head + BPF_CORE_READ(skb, network_header));
	if (!msg)
		return 0;
	e->netns_id = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	e->pkt_type = IG_DNS_PKT_OUTGOING;
	key.netns_id = e->netns_id;
	key.port = e->sport;
	if ((bpf_get_current_pid_tgid() >> 32) != 0 &&
	    BPF_CORE_READ(task, nsproxy, net_ns, ns.inum) == e->netns_id) {
		owner_of_current(&current, gadget_get_mntns_id());
		if (!discard_owner(&current))
			bpf_map_update_elem(&owners, &key, &current, BPF_ANY);
		o = &current;
	} else {
		o = bpf_map_lookup_elem(&owners, &key);
	}
	if (discard_owner(o))
		return 0;
	emit(e, o, msg, end);
	return 0;
}

SEC("tracepoint/net/netif_receive_skb")
int ig_dns_ingress(struct trace_event_raw_net_dev_template *ctx)
{
	struct sk_buff *skb = ctx->skbaddr;
	/* The link-layer header is already pulled: data is the IP header. */
	unsigned long data = (unsigned long)BPF_CORE_READ(skb, data);
	unsigned long msg, end = (unsigned long)BPF_CORE_READ(skb, head) + BPF_CORE_READ(skb, tail);
	struct owner_key key = {};
	const struct owner *o;
	struct ig_dns_event *e = new_event();

	if (!e)
		return 0;
	msg = parse_headers(e, data);
	if (!msg)
		return 0;
	e->netns_id = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum);
	e->pkt_type = IG_DNS_PKT_HOST;
	key.netns_id = e->netns_id;
	key.port = e->dport;
	o = bpf_map_lookup_elem(&owners, &key);
	if (discard_owner(o))
		return 0;
	emit(e, o, msg, end);
	return 0;
}

/*
 * A task about to receive on a UDP socket bound to the DNS port is that
 * port's owner: queries arriving for it are its own.
 */
static __always_inline int remember_server(__s32 fd)
{
	__u64 mntns_id = gadget_get_mntns_id();
	struct owner_key key = {};
	struct owner o = {};
	struct socket *sock;
	struct file *file;
	struct sock *sk;

	if (gadget_should_discard_mntns_id(mntns_id))
		return 0;
	file = gadget_current_file(fd);
	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & IG_S_IFMT) != IG_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IG_IPPROTO_UDP ||
	    BPF_CORE_READ(sk, __sk_common.skc_num) != IG_DNS_PORT)
		return 0;
	key.netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	key.port = IG_DNS_PORT;
	owner_of_current(&o, mntns_id);
	bpf_map_update_elem(&owners, &key, &o, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int ig_dns_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return remember_server(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int ig_dns_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return remember_server(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int ig_dns_recvmmsg(struct trace_event_raw_sys_enter *ctx)
{
	return remember_server(ctx->args[0]);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * profile tcprtt: the distribution of TCP round-trip times (the kernel's
 * smoothed RTT, srtt) over the segments connections receive, in
 * power-of-two buckets of microseconds or milliseconds, summed per CPU.
 *
 * Facility: the raw tracepoint tcp_probe (sk, skb), which the kernel runs
 * for every segment an established connection receives; raw, because a
 * classic tracepoint would fill its whole record first. Its record layout
 * does not matter: the RTT is read from the socket. The socket's owner
 * comes from sock_owners.h; without one the bucket is keyed by the
 * socket's network namespace and userspace names its container.
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; profile
 * gadgets send no events through them (their result is the histogram). */
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "sock_owners.h"
#include "histogram.h"
#include "program.h"

/* Load-time settings: --milliseconds, -b / -B, --laddr/--raddr/--lport/--rport. */
const volatile bool gadget_ms = false;
const volatile __u8 gadget_by_addr = 0; /* 0 none, 1 local, 2 remote */
const volatile __u16 gadget_lport = 0;
const volatile __u16 gadget_rport = 0;
const volatile __u16 gadget_laddr_family = 0; /* 0: any */
const volatile __u8 gadget_laddr[16] = {};
const volatile __u16 gadget_raddr_family = 0;
const volatile __u8 gadget_raddr[16] = {};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct ig_tcprtt_key);
	__type(value, __u64);
} rtt_hist SEC(".maps");

/* Whether addr (of family) is the one the flag asked for; any when unset. */
static __always_inline bool addr_wanted(__u16 want_family, const volatile __u8 *want, __u16 family,
					const __u8 *addr)
{
	int n = family == AF_INET ? 4 : 16;

	if (!want_family)
		return true;
	if (family != want_family)
		return false;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (i < n && addr[i] != want[i])
			return false;
	}
	return true;
}

SEC("raw_tracepoint/tcp_probe")
int ig_tcp_probe(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	const struct ig_process *o = gadget_owner_of(sk);
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	struct ig_tcprtt_key key = {};
	__u8 saddr[16] = {}, daddr[16] = {};
	__u16 family, sport, dport;
	__u64 rtt;

	if (!sk || gadget_discard_owner(o))
		return 0;
	gadget_sock_ends(sk, &family, &sport, &dport, saddr, daddr);
	if ((gadget_lport && sport != gadget_lport) || (gadget_rport && dport != gadget_rport))
		return 0;
	if (!addr_wanted(gadget_laddr_family, gadget_laddr, family, saddr) ||
	    !addr_wanted(gadget_raddr_family, gadget_raddr, family, daddr))
		return 0;
	/* srtt_us holds eight times the smoothed RTT in microseconds. */
	rtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	if (gadget_ms)
		rtt /= 1000;
	if (o)
		key.mntns_id = o->mntns_id;
	else
		key.netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	if (gadget_by_addr) {
		key.family = family;
		__builtin_memcpy(key.addr, gadget_by_addr == 1 ? saddr : daddr, 16);
	}
	key.bucket = gadget_bucket_of(rtt);
	gadget_count_in(&rtt_hist, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

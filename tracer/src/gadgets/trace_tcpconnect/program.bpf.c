// SPDX-License-Identifier: GPL-2.0
/*
 * trace tcpconnect: outgoing TCP connections, optionally with the time the
 * handshake took.
 *
 * Facilities: tracepoints syscalls/sys_{enter,exit}_connect (process
 * context: pid, comm, container) and, with --latency, sock/inet_sock_set_state
 * for non-blocking connects that complete later (SYN_SENT -> ESTABLISHED,
 * keyed by the socket). A blocking connect's latency is the syscall's
 * duration, which is the handshake.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "program.h"

const volatile bool gadget_latency = false;
/* --min: only connections that took at least this long (with --latency) */
const volatile __u64 gadget_min_latency_ns = 0;

#define TCP_ESTABLISHED 1
#define TCP_CLOSE 7
#define EINPROGRESS 115

struct connect_start {
	__u64 started_ns;
	__u64 mntns_id;
	__s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct connect_start);
} connect_starts SEC(".maps");

/* Non-blocking connects under way, by socket: the event waits for ESTABLISHED. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);
	__type(value, struct ig_tcpconnect_event);
} pending SEC(".maps");

static __always_inline void fill(struct ig_tcpconnect_event *e, struct sock *sk, __u64 mntns_id)
{
	gadget_fill_process(&e->process, mntns_id);
	e->netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	gadget_sock_ends(sk, &e->family, &e->sport, &e->dport, e->saddr, e->daddr);
}

static __always_inline void send(struct ig_tcpconnect_event *e)
{
	if (gadget_latency && e->latency_ns < gadget_min_latency_ns)
		return;
	gadget_output(e, sizeof(*e));
}

SEC("tracepoint/syscalls/sys_enter_connect")
int ig_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_start start = {.fd = ctx->args[0]};

	start.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(start.mntns_id))
		return 0;
	start.started_ns = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&connect_starts, &tid, &start, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int ig_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct connect_start *start = bpf_map_lookup_elem(&connect_starts, &tid);
	struct ig_tcpconnect_event e = {};
	struct connect_start s;
	struct sock *sk;
	__u64 now, key;

	if (!start)
		return 0;
	s = *start;
	bpf_map_delete_elem(&connect_starts, &tid);
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	sk = gadget_tcp_sock_of(s.fd);
	if (!sk)
		return 0;
	now = bpf_ktime_get_boot_ns();
	fill(&e, sk, s.mntns_id);
	if (gadget_latency && ctx->ret == -EINPROGRESS) {
		/*
		 * Keep the start time; the event goes out at ESTABLISHED. On
		 * loopback that may already have happened inside the syscall:
		 * check after inserting. Whoever deletes the entry sends it.
		 */
		e.timestamp_ns = s.started_ns;
		key = (__u64)sk;
		bpf_map_update_elem(&pending, &key, &e, BPF_ANY);
		if (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_ESTABLISHED &&
		    bpf_map_delete_elem(&pending, &key) == 0) {
			e.timestamp_ns = now;
			e.latency_ns = now - s.started_ns;
			send(&e);
		}
		return 0;
	}
	e.timestamp_ns = now;
	e.latency_ns = gadget_latency ? now - s.started_ns : 0;
	send(&e);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int ig_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 key = (__u64)ctx->skaddr;
	struct ig_tcpconnect_event *found, e;
	__u64 now;

	if (!gadget_latency || ctx->protocol != IG_IPPROTO_TCP)
		return 0;
	if (ctx->newstate != TCP_ESTABLISHED && ctx->newstate != TCP_CLOSE)
		return 0;
	found = bpf_map_lookup_elem(&pending, &key);
	if (!found)
		return 0;
	e = *found;
	/* only the side that removes the entry sends it */
	if (bpf_map_delete_elem(&pending, &key) != 0 || ctx->newstate != TCP_ESTABLISHED)
		return 0;
	now = bpf_ktime_get_boot_ns();
	e.latency_ns = now - e.timestamp_ns;
	e.timestamp_ns = now;
	send(&e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

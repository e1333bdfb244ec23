/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who owns a TCP socket, for gadgets whose events fire where the owner is
 * not the current task (retransmit timers, drops in softirq).
 *
 * A socket's owner is the task that called connect() (the move to SYN_SENT
 * runs in its syscall), listen(), or accept() (at the syscall's exit, the
 * socket behind the new descriptor). Forgotten when the socket moves to
 * CLOSE. Sockets opened before the gadget started have no known owner: the
 * gadget then says which network namespace the event happened in, and
 * userspace names the container that owns it.
 *
 * The programs below go into each gadget that includes this header; their
 * names are what the gadget's Rust side attaches (SOCK_OWNER_ATTACHMENTS).
 * Needs task.h, files.h and sockets.h.
 */
#ifndef IG_SOCK_OWNERS_H
#define IG_SOCK_OWNERS_H

#define IG_TCP_SYN_SENT 2
#define IG_TCP_CLOSE 7
#define IG_TCP_LISTEN 10

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* the struct sock's address */
	__type(value, struct ig_process);
} gadget_sock_owners SEC(".maps");

static __always_inline void gadget_remember_owner(const void *sk)
{
	struct ig_process o;
	__u64 key = (__u64)sk;

	gadget_fill_process(&o, gadget_get_mntns_id());
	bpf_map_update_elem(&gadget_sock_owners, &key, &o, BPF_ANY);
}

static __always_inline const struct ig_process *gadget_owner_of(const void *sk)
{
	__u64 key = (__u64)sk;

	return sk ? bpf_map_lookup_elem(&gadget_sock_owners, &key) : NULL;
}

/*
 * True when the event of a socket owned by o (NULL: not known) must be
 * dropped. An unknown owner passes the container filter: userspace decides
 * by the event's network namespace. It cannot pass the process filters.
 */
static __always_inline bool gadget_discard_owner(const struct ig_process *o)
{
	if (!o)
		return gadget_process_filters_set();
	return gadget_should_discard_mntns_id(o->mntns_id) || gadget_should_discard_of(o);
}

SEC("tracepoint/sock/inet_sock_set_state")
int ig_owner_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const void *sk = BPF_CORE_READ(ctx, skaddr);
	__u64 key = (__u64)sk;
	int state = BPF_CORE_READ(ctx, newstate);

	if (BPF_CORE_READ(ctx, protocol) != IG_IPPROTO_TCP)
		return 0;
	if (state == IG_TCP_SYN_SENT || state == IG_TCP_LISTEN)
		gadget_remember_owner(sk);
	else if (state == IG_TCP_CLOSE)
		bpf_map_delete_elem(&gadget_sock_owners, &key);
	return 0;
}

static __always_inline int gadget_owner_accepted(long fd)
{
	struct sock *sk;

	if (fd < 0)
		return 0;
	sk = gadget_tcp_sock_of(fd);
	if (sk)
		gadget_remember_owner(sk);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int ig_owner_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return gadget_owner_accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int ig_owner_accept(struct trace_event_raw_sys_exit *ctx)
{
	return gadget_owner_accepted(ctx->ret);
}

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * trace bind: IPv4 and IPv6 sockets bound to an address and port.
 *
 * Facilities: tracepoints syscalls/sys_{enter,exit}_bind. The address is
 * read at exit (the kernel has copied it); protocol, options and bound
 * interface come from the socket behind the descriptor.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "program.h"

const volatile bool gadget_ignore_errors = true;

#define AF_INET 2
#define AF_INET6 10
/* inet_sock.inet_flags bits (an anonymous enum in the kernel) */
#define INET_FLAGS_FREEBIND_BIT 11
#define INET_FLAGS_TRANSPARENT_BIT 15
#define INET_FLAGS_BIND_ADDRESS_NO_PORT_BIT 18

struct bind_start {
	__u64 mntns_id;
	const void *addr;
	__s32 fd;
	__u32 addrlen;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct bind_start);
} bind_starts SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_bind")
int ig_bind_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct bind_start start = {
		.fd = ctx->args[0],
		.addr = (const void *)ctx->args[1],
		.addrlen = ctx->args[2],
	};

	start.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(start.mntns_id))
		return 0;
	bpf_map_update_elem(&bind_starts, &tid, &start, BPF_ANY);
	return 0;
}

static __always_inline __u16 socket_opts(struct sock *sk)
{
	__u16 opts = 0;

	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuse))
		opts |= IG_BIND_REUSEADDR;
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, __sk_common.skc_reuseport))
		opts |= IG_BIND_REUSEPORT;
	if (bpf_core_field_exists(((struct inet_sock *)sk)->inet_flags)) {
		unsigned long flags = BPF_CORE_READ((struct inet_sock *)sk, inet_flags);

		if (flags & (1UL << INET_FLAGS_FREEBIND_BIT))
			opts |= IG_BIND_FREEBIND;
		if (flags & (1UL << INET_FLAGS_TRANSPARENT_BIT))
			opts |= IG_BIND_TRANSPARENT;
		if (flags & (1UL << INET_FLAGS_BIND_ADDRESS_NO_PORT_BIT))
			opts |= IG_BIND_NO_PORT;
	}
	return opts;
}

SEC("tracepoint/syscalls/sys_exit_bind")
int ig_bind_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct bind_start *start = bpf_map_lookup_elem(&bind_starts, &tid);
	struct ig_bind_event e = {};
	struct bind_start s;
	struct socket *sock;
	struct file *file;
	struct sock *sk;
	long ret = ctx->ret;

	if (!start)
		return 0;
	s = *start;
	bpf_map_delete_elem(&bind_starts, &tid);
	if (ret < 0 && gadget_ignore_errors)
		return 0;
	if (bpf_probe_read_user(&e.family, sizeof(e.family), s.addr))
		return 0;
	if (e.family == AF_INET && s.addrlen >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in in = {};

		bpf_probe_read_user(&in, sizeof(in), s.addr);
		e.port = bpf_ntohs(in.sin_port);
		__builtin_memcpy(e.addr, &in.sin_addr, 4);
	} else if (e.family == AF_INET6 && s.addrlen >= sizeof(struct sockaddr_in6)) {
		struct sockaddr_in6 in6 = {};

		bpf_probe_read_user(&in6, sizeof(in6), s.addr);
		e.port = bpf_ntohs(in6.sin6_port);
		__builtin_memcpy(e.addr, &in6.sin6_addr, 16);
	} else {
		return 0; /* unix, netlink, ...: not this gadget's */
	}
	file = gadget_current_file(s.fd);
	sock = file ? BPF_CORE_READ(file, private_data) : NULL;
	sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (sk) {
		e.protocol = BPF_CORE_READ(sk, sk_protocol);
		e.bound_dev_if = BPF_CORE_READ(sk, __sk_common.skc_bound_dev_if);
		e.opts = socket_opts(sk);
	}
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e.process, s.mntns_id);
	e.retval = ret;
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

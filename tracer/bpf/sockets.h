/* SPDX-License-Identifier: GPL-2.0 */
/* TCP sockets behind a descriptor, and their two ends. Needs files.h. */
#ifndef IG_SOCKETS_H
#define IG_SOCKETS_H

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif
#define IG_IPPROTO_TCP 6
#define IG_S_IFMT 00170000
#define IG_S_IFSOCK 0140000

/* The IPv4/IPv6 TCP socket behind fd of the current task, or NULL. */
static __always_inline struct sock *gadget_tcp_sock_of(__s32 fd)
{
	struct file *file = gadget_current_file(fd);
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & IG_S_IFMT) != IG_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != IG_IPPROTO_TCP)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6 ? sk : NULL;
}

/* The local (s*) and remote (d*) ends of sk; ports in host byte order. */
static __always_inline void gadget_sock_ends(struct sock *sk, __u16 *family, __u16 *sport,
					     __u16 *dport, __u8 *saddr, __u8 *daddr)
{
	*family = BPF_CORE_READ(sk, __sk_common.skc_family);
	*sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (*family == AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(saddr, &s, 4);
		__builtin_memcpy(daddr, &d, 4);
	} else {
		bpf_probe_read_kernel(saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
}

#endif

// SPDX-License-Identifier: GPL-2.0
/*
 * trace sni: the server name (SNI) of every TLS connection a task opens.
 *
 * Facilities: the syscall tracepoints sys_enter_{write,writev,sendto,sendmsg},
 * in the writing task's own context. A TLS client writes its ClientHello in
 * one call: when the buffer starts like one (a handshake record whose first
 * message is a client_hello) and the descriptor is a TCP socket, the record
 * is copied for userspace, which reads the server_name extension. Reading
 * the task's own buffer, rather than packets, sees the whole hello even when
 * the kernel keeps it in paged fragments or splits it over segments. A
 * write whose buffer is not in memory (never, for a buffer just filled) is
 * not seen; neither are hellos sent by io_uring or kernel TLS offload.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "files.h"
#include "sockets.h"
#include "program.h"

#define TLS_HANDSHAKE 0x16
#define TLS_MAJOR 0x03
#define TLS_CLIENT_HELLO 0x01
/* The record header (5 bytes) and the handshake type. */
#define TLS_PREFIX 6

/*
 * The event is larger than the stack: it is built here. The slack lets the
 * copy length be bounded with a mask (2 * IG_SNI_MAX_HELLO - 1), which the
 * verifier follows whatever register clang keeps it in.
 */
struct scratch_event {
	struct ig_sni_event e;
	__u8 slack[IG_SNI_MAX_HELLO];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

static __always_inline int check_write(__s32 fd, const void *buf, __u64 count)
{
	__u64 mntns_id, n;
	struct scratch_event *s;
	struct ig_sni_event *e;
	__u8 prefix[TLS_PREFIX];
	struct sock *sk;
	__u32 zero = 0;

	if (count < TLS_PREFIX)
		return 0;
	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	if (bpf_probe_read_user(prefix, sizeof(prefix), buf) || prefix[0] != TLS_HANDSHAKE ||
	    prefix[1] != TLS_MAJOR || prefix[5] != TLS_CLIENT_HELLO)
		return 0;
	sk = gadget_tcp_sock_of(fd);
	if (!sk)
		return 0;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	e = &s->e;
	__builtin_memset(e, 0, offsetof(struct ig_sni_event, hello));
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e->process, mntns_id);
	e->netns_id = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	n = count > IG_SNI_MAX_HELLO ? IG_SNI_MAX_HELLO : count;
	/* In asm, so that it is the register passed on that is masked. */
	asm volatile("%0 &= 8191" : "+r"(n));
	if (bpf_probe_read_user(e->hello, n, buf))
		return 0;
	e->hello_len = n;
	gadget_output(e, offsetof(struct ig_sni_event, hello) + n);
	return 0;
}

/* The first buffer of an iovec array. */
static __always_inline int check_iov(__s32 fd, const struct iovec *iov)
{
	struct iovec first;

	if (!iov || bpf_probe_read_user(&first, sizeof(first), iov))
		return 0;
	return check_write(fd, first.iov_base, first.iov_len);
}

SEC("tracepoint/syscalls/sys_enter_write")
int ig_sni_write(struct trace_event_raw_sys_enter *ctx)
{
	return check_write(ctx->args[0], (const void *)ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int ig_sni_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return check_write(ctx->args[0], (const void *)ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int ig_sni_writev(struct trace_event_raw_sys_enter *ctx)
{
	return check_iov(ctx->args[0], (const struct iovec *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int ig_sni_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	struct user_msghdr msg;

	if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)ctx->args[1]) ||
	    msg.msg_iovlen < 1)
		return 0;
	return check_iov(ctx->args[0], msg.msg_iov);
}

char LICENSE[] SEC("license") = "GPL";

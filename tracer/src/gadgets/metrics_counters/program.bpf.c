// SPDX-License-Identifier: GPL-2.0
/*
 * The daemon's in-kernel counters (`ig daemon --metrics-address`): per
 * mount namespace, how many execs, opens, signals, OOM kills, TCP
 * connections and accepts, capability denials, and how many failed.
 * Nothing goes through the ring buffer: userspace reads the per-CPU hash
 * at each scrape. A key that does not fit any more is counted as lost,
 * never silently.
 *
 * Facilities: tracepoints syscalls/sys_exit_{execve,execveat,open,openat,
 * openat2,kill,tkill,tgkill,accept,accept4}, sock/inet_sock_set_state,
 * oom/mark_victim, and for TCP bytes sock/sock_{send,recv}_length (6.3+;
 * fired in the caller's context by sock_sendmsg and sock_recvmsg; without
 * them no bytes are counted, the daemon says so).
 * Capability denials: fexit on cap_capable() where trampolines are allowed,
 * else the tracepoint capability/cap_capable (6.16+), else a kprobe and a
 * kretprobe on cap_capable(); with none of them they are not counted (the
 * daemon says so). fexit and the kprobes see the caller's options and leave
 * out checks made with CAP_OPT_NOAUDIT (probes such as the memory
 * accounting's CAP_SYS_ADMIN test, not denials anyone asked for), as
 * `trace capabilities` does by default; the tracepoint does not carry them,
 * so there every denial counts.
 * An accept is counted at the syscall's exit, in the accepting task's
 * context (the accepted socket's state changes in softirq context, with
 * no owner to name). A connect's outcome comes in softirq context, where
 * the current task is not the connecting one: the socket is remembered
 * with its owner's mount namespace when it enters SYN_SENT (in connect(),
 * process context). An OOM kill counts for the task whose allocation made
 * the kernel pick a victim, as `trace oomkill` filters it (in a
 * memory-limited container, a task of that container).
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "calls.h"
#include "files.h"
#include "sockets.h"
#include "program.h"

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7

/*
 * Not preallocated: a per-CPU value for every possible key on every CPU
 * would be tens of MB on a large node; a namespace's counters are
 * allocated when it first counts (7 counters x a few hundred namespaces).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ig_counter_key);
	__type(value, __u64);
} ig_counters SEC(".maps");

/* Sockets in SYN_SENT: their owner's mount namespace. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} ig_connecting SEC(".maps");

static __always_inline void add(__u64 mntns_id, __u32 counter, __u64 by)
{
	struct ig_counter_key key = {.mntns_id = mntns_id, .counter = counter};
	__u64 *n = bpf_map_lookup_elem(&ig_counters, &key);

	if (n) {
		*n += by;
		return;
	}
	/* BPF_NOEXIST: another CPU's first count is its own per-CPU value. */
	if (bpf_map_update_elem(&ig_counters, &key, &by, BPF_NOEXIST) != 0) {
		n = bpf_map_lookup_elem(&ig_counters, &key);
		if (n)
			*n += by;
		else
			gadget_count(IG_STAT_LOST);
	}
}

static __always_inline void bump(__u64 mntns_id, __u32 counter)
{
	add(mntns_id, counter, 1);
}

static __always_inline void count_result(long ret, __u32 all, __u32 failed)
{
	__u64 mntns_id = gadget_get_mntns_id();

	bump(mntns_id, all);
	if (ret < 0)
		bump(mntns_id, failed);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int ig_count_execve(struct trace_event_raw_sys_exit *ctx)
{
	count_result(ctx->ret, IG_COUNTER_EXECS, IG_COUNTER_FAILED_EXECS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int ig_count_execveat(struct trace_event_raw_sys_exit *ctx)
{
	count_result(ctx->ret, IG_COUNTER_EXECS, IG_COUNTER_FAILED_EXECS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int ig_count_open(struct trace_event_raw_sys_exit *ctx)
{
	count_result(ctx->ret, IG_COUNTER_OPENS, IG_COUNTER_FAILED_OPENS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ig_count_openat(struct trace_event_raw_sys_exit *ctx)
{
	count_result(ctx->ret, IG_COUNTER_OPENS, IG_COUNTER_FAILED_OPENS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int ig_count_openat2(struct trace_event_raw_sys_exit *ctx)
{
	count_result(ctx->ret, IG_COUNTER_OPENS, IG_COUNTER_FAILED_OPENS);
	return 0;
}

/* Every attempt, as trace signal counts them. */
SEC("tracepoint/syscalls/sys_exit_kill")
int ig_count_kill(struct trace_event_raw_sys_exit *ctx)
{
	bump(gadget_get_mntns_id(), IG_COUNTER_SIGNALS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int ig_count_tkill(struct trace_event_raw_sys_exit *ctx)
{
	bump(gadget_get_mntns_id(), IG_COUNTER_SIGNALS);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int ig_count_tgkill(struct trace_event_raw_sys_exit *ctx)
{
	bump(gadget_get_mntns_id(), IG_COUNTER_SIGNALS);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int ig_count_tcp_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr, *mntns_id, owner;

	if (ctx->protocol != IG_IPPROTO_TCP)
		return 0;
	if (ctx->newstate == TCP_SYN_SENT) {
		/* connect(): process context, the owner is current */
		owner = gadget_get_mntns_id();
		bpf_map_update_elem(&ig_connecting, &sk, &owner, BPF_ANY);
		return 0;
	}
	if (ctx->oldstate != TCP_SYN_SENT)
		return 0;
	mntns_id = bpf_map_lookup_elem(&ig_connecting, &sk);
	if (!mntns_id)
		return 0;
	owner = *mntns_id;
	bpf_map_delete_elem(&ig_connecting, &sk);
	bump(owner, IG_COUNTER_TCP_CONNECTS);
	if (ctx->newstate != TCP_ESTABLISHED)
		bump(owner, IG_COUNTER_FAILED_TCP_CONNECTS);
	return 0;
}

#define MSG_PEEK 2

SEC("tracepoint/sock/sock_send_length")
int ig_count_send(struct trace_event_raw_sock_msg_length *ctx)
{
	if (ctx->protocol == IG_IPPROTO_TCP && ctx->ret > 0)
		add(gadget_get_mntns_id(), IG_COUNTER_TCP_SENT_BYTES, ctx->ret);
	return 0;
}

SEC("tracepoint/sock/sock_recv_length")
int ig_count_recv(struct trace_event_raw_sock_msg_length *ctx)
{
	if (ctx->protocol == IG_IPPROTO_TCP && ctx->ret > 0 && !(ctx->flags & MSG_PEEK))
		add(gadget_get_mntns_id(), IG_COUNTER_TCP_RECEIVED_BYTES, ctx->ret);
	return 0;
}

/* A TCP socket accepted: counted for the accepting task. */
static __always_inline void count_accept(long ret)
{
	if (ret >= 0 && gadget_tcp_sock_of(ret))
		bump(gadget_get_mntns_id(), IG_COUNTER_TCP_ACCEPTS);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int ig_count_accept(struct trace_event_raw_sys_exit *ctx)
{
	count_accept(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int ig_count_accept4(struct trace_event_raw_sys_exit *ctx)
{
	count_accept(ctx->ret);
	return 0;
}

SEC("tracepoint/oom/mark_victim")
int ig_count_oom_kill(void *ctx)
{
	bump(gadget_get_mntns_id(), IG_COUNTER_OOM_KILLS);
	return 0;
}

#define CAP_OPT_NOAUDIT 0x2

/* int cap_capable(const struct cred *, struct user_namespace *, int cap, unsigned int opts) */
SEC("fexit/cap_capable")
int BPF_PROG(ig_count_cap_fexit, const struct cred *cred, struct user_namespace *ns, int cap,
	     unsigned int opts, int ret)
{
	if (ret != 0 && !(opts & CAP_OPT_NOAUDIT))
		bump(gadget_get_mntns_id(), IG_COUNTER_CAPABILITY_DENIALS);
	return 0;
}

SEC("tracepoint/capability/cap_capable")
int ig_count_cap_tracepoint(struct trace_event_raw_cap_capable *ctx)
{
	if (ctx->ret != 0)
		bump(gadget_get_mntns_id(), IG_COUNTER_CAPABILITY_DENIALS);
	return 0;
}

/* The kprobe pair: entry keeps audited checks' namespaces for the return. */
GADGET_CALLS_MAP(cap_calls, __u64);

SEC("kprobe/cap_capable")
int ig_count_cap_entry(struct pt_regs *ctx)
{
	__u64 mntns_id;

	if ((__u32)PT_REGS_PARM4(ctx) & CAP_OPT_NOAUDIT)
		return 0;
	mntns_id = gadget_get_mntns_id();
	gadget_call_begin(&cap_calls, &mntns_id);
	return 0;
}

SEC("kretprobe/cap_capable")
int ig_count_cap_exit(struct pt_regs *ctx)
{
	__u64 mntns_id;

	if (gadget_call_end(&cap_calls, &mntns_id, sizeof(mntns_id)) && (int)PT_REGS_RC(ctx) != 0)
		bump(mntns_id, IG_COUNTER_CAPABILITY_DENIALS);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * trace ssl: the plaintext of TLS reads and writes, taken where the program
 * hands it to (or gets it from) its TLS library.
 *
 * Facilities: uprobes on the library's entry points and one uretprobe for
 * all of them. Userspace attaches them to every libssl and libgnutls found
 * in a selected container's own root (and the host's, with --host): the
 * probes sit on that file, so any process mapping it is seen. At entry the
 * buffer (and for the _ex forms the pointer the count goes to) is kept per
 * thread; at return the bytes the call moved are copied from the buffer:
 * for a read they are only there then.
 *
 * One call is reported once: an entry while the thread is already inside a
 * kept call with the same stack pointer is the same call seen by a second
 * probe (one library file attached through two containers' roots), with a
 * lower one a call made from inside the first (a library calling its own
 * entry points): both only count returns to skip. A higher stack pointer
 * means the kept call never returned (its thread unwound past it): it is
 * replaced.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "program.h"

/* --max-bytes. */
const volatile __u32 gadget_max_bytes = 512;

struct ssl_call {
	__u64 start_ns;
	__u64 sp;
	__u64 buf;
	__u64 count_ptr; /* _ex forms: where the byte count is written */
	__u32 op;
	__u32 nested; /* returns to skip before this call's own */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

/*
 * The event is larger than the stack: it is built here. The slack lets the
 * copy length be bounded with a mask (2 * IG_SSL_MAX_DATA - 1), which the
 * verifier follows whatever register clang keeps it in.
 */
struct scratch_event {
	struct ig_ssl_event e;
	__u8 slack[IG_SSL_MAX_DATA];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

static __always_inline int call_enter(struct pt_regs *ctx, __u32 op, bool ex)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ssl_call call = {}, *kept;
	__u64 sp = PT_REGS_SP(ctx);

	if (gadget_should_discard_current(gadget_get_mntns_id()))
		return 0;
	kept = bpf_map_lookup_elem(&ssl_calls, &tid);
	if (kept && sp <= kept->sp) {
		kept->nested++;
		return 0;
	}
	call.start_ns = bpf_ktime_get_ns();
	call.sp = sp;
	call.buf = PT_REGS_PARM2(ctx);
	call.count_ptr = ex ? PT_REGS_PARM4(ctx) : 0;
	call.op = op;
	if (bpf_map_update_elem(&ssl_calls, &tid, &call, BPF_ANY))
		gadget_count(IG_STAT_LOST);
	return 0;
}

SEC("uprobe")
int ig_ssl_read_enter(struct pt_regs *ctx)
{
	return call_enter(ctx, IG_SSL_OP_SSL_READ, false);
}

SEC("uprobe")
int ig_ssl_write_enter(struct pt_regs *ctx)
{
	return call_enter(ctx, IG_SSL_OP_SSL_WRITE, false);
}

SEC("uprobe")
int ig_ssl_read_ex_enter(struct pt_regs *ctx)
{
	return call_enter(ctx, IG_SSL_OP_SSL_READ_EX, true);
}

SEC("uprobe")
int ig_ssl_write_ex_enter(struct pt_regs *ctx)
{
	return call_enter(ctx, IG_SSL_OP_SSL_WRITE_EX, true);
}

SEC("uprobe")
int ig_gnutls_recv_enter(struct pt_regs *ctx)
{
	return call_enter(ctx, IG_SSL_OP_GNUTLS_RECV, false);
}

SEC("uprobe")
int ig_gnutls_send_enter(struct pt_regs *ctx)
{
	return call_enter(ctx, IG_SSL_OP_GNUTLS_SEND, false);
}

/* The bytes a call moved: none for a failure (<= 0, or an _ex form's 0). */
static __always_inline __u64 moved_bytes(struct pt_regs *ctx, const struct ssl_call *call)
{
	__s64 ret = PT_REGS_RC(ctx);
	__u64 count = 0;

	switch (call->op) {
	case IG_SSL_OP_SSL_READ:
	case IG_SSL_OP_SSL_WRITE:
		/* int */
		return (__s32)ret > 0 ? (__u64)(__s32)ret : 0;
	case IG_SSL_OP_SSL_READ_EX:
	case IG_SSL_OP_SSL_WRITE_EX:
		/* 1 on success, the count in *count_ptr (a size_t) */
		if ((__s32)ret != 1 || !call->count_ptr ||
		    bpf_probe_read_user(&count, sizeof(count), (const void *)call->count_ptr))
			return 0;
		return count;
	default:
		/* ssize_t */
		return ret > 0 ? (__u64)ret : 0;
	}
}

SEC("uretprobe")
int ig_ssl_return(struct pt_regs *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct scratch_event *s;
	struct ig_ssl_event *e;
	struct ssl_call call, *kept;
	__u32 zero = 0;
	__u64 len, n;

	kept = bpf_map_lookup_elem(&ssl_calls, &tid);
	if (!kept)
		return 0;
	if (kept->nested) {
		kept->nested--;
		return 0;
	}
	call = *kept;
	bpf_map_delete_elem(&ssl_calls, &tid);
	len = moved_bytes(ctx, &call);
	if (!len)
		return 0;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	e = &s->e;
	__builtin_memset(e, 0, offsetof(struct ig_ssl_event, data));
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e->process, gadget_get_mntns_id());
	e->latency_ns = bpf_ktime_get_ns() - call.start_ns;
	e->len = len;
	e->op = call.op;
	n = len < gadget_max_bytes ? len : gadget_max_bytes;
	if (n > IG_SSL_MAX_DATA)
		n = IG_SSL_MAX_DATA;
	/* In asm, so that it is the register passed on that is masked. */
	asm volatile("%0 &= 16383" : "+r"(n));
	if (n && bpf_probe_read_user(e->data, n, (const void *)call.buf))
		n = 0;
	e->data_len = n;
	gadget_output(e, offsetof(struct ig_ssl_event, data) + n);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * traceloop: a flight recorder. Every syscall of a selected container is
 * written, when it returns, into that container's ring (a per-CPU hash
 * keyed by mount namespace: each CPU overwrites its own oldest slot, so no
 * atomics are needed, which 5.10 lacks). Userspace reads the rings when
 * asked, and when the first process of a container's pid namespace exits
 * (the event below). The last N calls of a container are exact: each of
 * them is among the last N of the CPU it returned on.
 *
 * Facilities: the raw tracepoints sys_enter and sys_exit (every syscall),
 * sched_process_exit.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "program.h"

/* The code segment selector of 32-bit user code (x86 __USER32_CS). */
#define IG_USER32_CS 0x23
/* x86-64 exit and exit_group: they never return, so they are kept at entry. */
#define IG_NR_EXIT 60
#define IG_NR_EXIT_GROUP 231

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, IG_TRACELOOP_RINGS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct ig_traceloop_ring);
} traceloop_rings SEC(".maps");

/* An empty ring to create a namespace's ring from (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_traceloop_ring);
} traceloop_empty SEC(".maps");

/* Calls in flight, by thread. LRU: a thread blocked for long is forgotten
 * before a new call is refused; its call is then still kept at its exit,
 * from the registers, without entry time or string. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct ig_traceloop_pending);
} traceloop_pending SEC(".maps");

/* Per syscall number: which argument is a string or a buffer to keep
 * (index + 1 in bits 0-3; for a buffer, its length's argument index + 1 in
 * bits 4-7), filled by userspace from the kernel's syscall formats. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IG_TRACELOOP_NRS);
	__type(key, __u32);
	__type(value, __u32);
} traceloop_string_args SEC(".maps");

static __always_inline __u64 arg_of(const __u64 *args, __u32 i)
{
	switch (i) {
	case 0:
		return args[0];
	case 1:
		return args[1];
	case 2:
		return args[2];
	case 3:
		return args[3];
	case 4:
		return args[4];
	default:
		return args[5];
	}
}

/* The user registers, read in one go (one helper call, not one per field). */
static __always_inline void read_regs(struct pt_regs *regs, struct pt_regs *copy)
{
	if (bpf_probe_read_kernel(copy, sizeof(*copy), regs))
		__builtin_memset(copy, 0, sizeof(*copy));
}

/* 32-bit code's calls carry ia32 numbers (told by the user code segment). */
static __always_inline __u32 compat_flag(const struct pt_regs *regs)
{
	return (regs->cs & 0xffff) == IG_USER32_CS ? IG_CALL_COMPAT : 0;
}

static __always_inline void copy_args(const struct pt_regs *regs, __u64 *args)
{
	args[0] = regs->di;
	args[1] = regs->si;
	args[2] = regs->dx;
	args[3] = regs->r10;
	args[4] = regs->r8;
	args[5] = regs->r9;
}

/* Keeps the first bytes of the call's string or buffer argument. */
static __always_inline void keep_string(struct ig_traceloop_pending *p)
{
	__u32 nr = p->nr, spec, str_arg, len_arg;
	__u32 *found;
	__u64 len;
	long n;

	if (nr >= IG_TRACELOOP_NRS || (p->flags & IG_CALL_COMPAT))
		return;
	found = bpf_map_lookup_elem(&traceloop_string_args, &nr);
	if (!found)
		return;
	spec = *found;
	str_arg = spec & 0xf;
	len_arg = (spec >> 4) & 0xf;
	if (str_arg == 0 || str_arg > 6)
		return;
	const void *ptr = (const void *)arg_of(p->args, str_arg - 1);
	if (len_arg >= 1 && len_arg <= 6) {
		len = arg_of(p->args, len_arg - 1);
		if (len > IG_TRACELOOP_STR)
			len = IG_TRACELOOP_STR;
		if (bpf_probe_read_user(p->text, len, ptr))
			return;
		p->str_len = len;
	} else {
		n = bpf_probe_read_user_str(p->text, sizeof(p->text), ptr);
		if (n <= 0)
			return;
		p->str_len = n - 1;
	}
	p->str_arg = str_arg;
}

static __always_inline struct ig_traceloop_call *next_slot(__u64 mntns_id)
{
	struct ig_traceloop_ring *ring;
	__u32 zero = 0;

	ring = bpf_map_lookup_elem(&traceloop_rings, &mntns_id);
	if (!ring) {
		struct ig_traceloop_ring *empty = bpf_map_lookup_elem(&traceloop_empty, &zero);

		if (!empty)
			return NULL;
		bpf_map_update_elem(&traceloop_rings, &mntns_id, empty, BPF_NOEXIST);
		ring = bpf_map_lookup_elem(&traceloop_rings, &mntns_id);
		if (!ring) {
			/* More namespaces than rings: counted, shown at the end. */
			gadget_count(IG_STAT_LOST);
			return NULL;
		}
	}
	return &ring->calls[ring->next++ & (IG_TRACELOOP_SLOTS - 1)];
}

static __always_inline void fill_task(struct ig_traceloop_call *c)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	c->pid = pid_tgid >> 32;
	c->tid = (__u32)pid_tgid;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
}

/* Copies what the entry kept into the slot. */
static __always_inline void from_pending(struct ig_traceloop_call *c,
					 const struct ig_traceloop_pending *p)
{
	c->enter_ns = p->enter_ns;
	__builtin_memcpy(c->args, p->args, sizeof(c->args));
	c->nr = p->nr;
	c->flags = p->flags | IG_CALL_ENTERED;
	c->str_arg = p->str_arg;
	c->str_len = p->str_len;
	__builtin_memcpy(c->text, p->text, sizeof(c->text));
}

SEC("raw_tracepoint/sys_enter")
int ig_traceloop_enter(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id), read as plain words (see
	 * advise seccomp-profile). */
	const __u64 *raw = (const __u64 *)ctx;
	struct pt_regs *regs = (struct pt_regs *)raw[0];
	struct ig_traceloop_pending p = {};
	struct ig_traceloop_call *c;
	struct pt_regs r;
	__u64 mntns_id;
	__u32 tid;

	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	p.enter_ns = bpf_ktime_get_boot_ns();
	p.mntns_id = mntns_id;
	p.nr = (__u32)raw[1];
	read_regs(regs, &r);
	p.flags = compat_flag(&r);
	copy_args(&r, p.args);
	keep_string(&p);
	if (!(p.flags & IG_CALL_COMPAT) && (p.nr == IG_NR_EXIT || p.nr == IG_NR_EXIT_GROUP)) {
		c = next_slot(mntns_id);
		if (!c)
			return 0;
		from_pending(c, &p);
		c->exit_ns = 0;
		c->ret = 0;
		fill_task(c);
		return 0;
	}
	tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&traceloop_pending, &tid, &p, BPF_ANY);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int ig_traceloop_exit(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_exit(struct pt_regs *regs, long ret). */
	const __u64 *raw = (const __u64 *)ctx;
	struct pt_regs *regs = (struct pt_regs *)raw[0];
	struct ig_traceloop_pending *p;
	struct ig_traceloop_call *c;
	__u64 mntns_id;
	__u32 tid;

	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	tid = (__u32)bpf_get_current_pid_tgid();
	c = next_slot(mntns_id);
	p = bpf_map_lookup_elem(&traceloop_pending, &tid);
	if (!c) {
		if (p)
			bpf_map_delete_elem(&traceloop_pending, &tid);
		return 0;
	}
	if (p) {
		from_pending(c, p);
		bpf_map_delete_elem(&traceloop_pending, &tid);
	} else {
		/* Its entry was not seen (it began before the gadget, or was
		 * forgotten): what the registers still say. */
		struct pt_regs r;

		read_regs(regs, &r);
		c->enter_ns = 0;
		copy_args(&r, c->args);
		c->nr = (__u32)r.orig_ax;
		c->flags = compat_flag(&r);
		c->str_arg = 0;
		c->str_len = 0;
	}
	c->flags |= IG_CALL_RETURNED;
	c->exit_ns = bpf_ktime_get_boot_ns();
	c->ret = (__s64)raw[1];
	fill_task(c);
	return 0;
}

/* The pid number a task has in its own pid namespace (0 at the top level). */
static __always_inline __u32 pid_in_own_namespace(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	int nr = 0;

	if (!pid || level == 0)
		return 0;
	/* numbers[level].nr: an index CO-RE cannot relocate, so the address
	 * from the relocated offsets. */
	bpf_probe_read_kernel(&nr, sizeof(nr),
			      (void *)pid + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * bpf_core_type_size(struct upid) +
				      bpf_core_field_offset(struct upid, nr));
	return nr;
}

SEC("raw_tracepoint/sched_process_exit")
int ig_traceloop_task_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct ig_traceloop_exit e = {};

	/* A thread killed inside a call may leave no exit behind. */
	bpf_map_delete_elem(&traceloop_pending, &tid);
	if (tid != pid_tgid >> 32)
		return 0;
	e.mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_mntns_id(e.mntns_id))
		return 0;
	if (pid_in_own_namespace(task) != 1)
		return 0;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	e.pid = tid;
	e.exit_code = BPF_CORE_READ(task, exit_code);
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

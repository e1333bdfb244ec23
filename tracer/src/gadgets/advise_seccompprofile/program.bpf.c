// SPDX-License-Identifier: GPL-2.0
/*
 * advise seccomp-profile: which syscalls each selected container makes,
 * as a set per mount namespace, read when the gadget stops. The map is per
 * CPU, so no two CPUs write the same word (an atomic OR needs Linux 5.12);
 * userspace ORs the CPUs' sets together.
 *
 * Facility: the raw tracepoint sys_enter (every syscall's number before it
 * runs, whatever its result).
 */
#include "common.h"
#include "filter.h"
/* The session expects the common ring buffer and loss counter; a
 * namespace that finds the map full is counted as lost there. */
#include "buffer.h"
#include "task.h"
#include "program.h"

/* The code segment selector of 32-bit user code (x86 __USER32_CS), and
 * where pt_regs keeps it: the 18th word, the layout ptrace exposes as
 * struct user_regs_struct, the same on every x86-64 kernel. */
#define IG_USER32_CS 0x23
#define IG_PT_REGS_CS_OFFSET (17 * 8)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ig_syscall_set);
} syscalls_used SEC(".maps");

SEC("raw_tracepoint/sys_enter")
int ig_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	/* sys_enter(struct pt_regs *regs, long id). Read as plain words: the
	 * BTF type's args[] has no length, so a CO-RE access past args[0]
	 * does not relocate. */
	const __u64 *args = (const __u64 *)ctx;
	void *regs = (void *)args[0];
	long nr = (long)args[1];
	struct ig_syscall_set *set;
	__u64 mntns_id;
	__u16 cs = 0;

	mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(mntns_id))
		return 0;
	set = bpf_map_lookup_elem(&syscalls_used, &mntns_id);
	if (!set) {
		struct ig_syscall_set empty = {};

		bpf_map_update_elem(&syscalls_used, &mntns_id, &empty, BPF_NOEXIST);
		set = bpf_map_lookup_elem(&syscalls_used, &mntns_id);
		if (!set) {
			gadget_count(IG_STAT_LOST);
			return 0;
		}
	}
	bpf_probe_read_kernel(&cs, sizeof(cs), regs + IG_PT_REGS_CS_OFFSET);
	if (cs == IG_USER32_CS) {
		set->compat_calls++;
		return 0;
	}
	if (nr < 0 || nr >= IG_MAX_SYSCALLS) {
		set->unrecorded_calls++;
		return 0;
	}
	/* Unsigned: BPF has no signed division (nr is known >= 0 here). */
	__u32 bit = (__u32)nr;

	set->words[(bit / 64) & (IG_SYSCALL_WORDS - 1)] |= 1ULL << (bit % 64);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

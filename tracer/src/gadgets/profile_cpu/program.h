/* SPDX-License-Identifier: GPL-2.0 */
/* profile cpu: the sample counts userspace reads at the end. Rust types are generated from this file. */
#ifndef IG_PROFILE_CPU_H
#define IG_PROFILE_CPU_H

#include "types.h"

/* Frames the kernel keeps per stack (its PERF_MAX_STACK_DEPTH). */
#define IG_MAX_STACK_DEPTH 127

/* One sampled place: the process and its thread's two stacks. The ids index
 * gadget_stacks; a negative id is the kernel's error for a stack it could
 * not store (-EFAULT: no user stack, e.g. a kernel thread; -EEXIST: a hash
 * collision; -ENOMEM: the map is full). */
struct ig_cpu_key {
	__u64 mntns_id;
	__u32 pid;
	__s32 user_stack_id;   /* -1: not asked for (-K) */
	__s32 kernel_stack_id; /* -1: not asked for (-U) */
	__u32 pad;
	__u8 comm[16];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* advise seccomp-profile: the syscall sets userspace reads at the end. Rust types are generated from this file. */
#ifndef IG_ADVISE_SECCOMPPROFILE_H
#define IG_ADVISE_SECCOMPPROFILE_H

#include "types.h"

/* x86-64 syscall numbers below this are recorded (the table ends near
 * 470; x32 calls carry bit 30 and are above it). */
#define IG_SYSCALL_WORDS 8
#define IG_MAX_SYSCALLS (IG_SYSCALL_WORDS * 64)

/* The syscalls one mount namespace made on one CPU: bit nr % 64 of word
 * nr / 64. */
struct ig_syscall_set {
	__u64 words[IG_SYSCALL_WORDS];
	/* Calls of 32-bit (ia32) code: other numbers, not in the set. */
	__u64 compat_calls;
	/* Calls numbered IG_MAX_SYSCALLS or more (x32, or a kernel newer
	 * than the set): not in the set either. */
	__u64 unrecorded_calls;
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* audit seccomp: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_AUDIT_SECCOMP_H
#define IG_AUDIT_SECCOMP_H

#include "types.h"

/* One seccomp decision the kernel logged: the task is the one whose
 * syscall the filter judged. */
struct ig_seccomp_event {
	__u64 timestamp_ns;
	struct ig_process process;
	/* The syscall number, as the filter saw it. */
	__s64 syscall;
	/* The signal the action sends (SIGSYS for kill and trap), or 0. */
	__s64 signr;
	/* The filter's action: SECCOMP_RET_* (the top 16 bits of its return
	 * value; the kernel passes no data with it). */
	__u32 code;
	/* 1: the call came from 32-bit code (its number is an ia32 one). */
	__u32 compat;
};

#endif

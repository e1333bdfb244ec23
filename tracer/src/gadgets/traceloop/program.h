/* SPDX-License-Identifier: GPL-2.0 */
/* traceloop: the calls the kernel keeps per container, and the exit event. Rust types are generated from this file. */
#ifndef IG_TRACELOOP_H
#define IG_TRACELOOP_H

#include "types.h"

/* Calls kept per mount namespace and CPU (a power of two). */
#define IG_TRACELOOP_SLOTS 64
/* Bytes kept of a call's string or buffer argument. */
#define IG_TRACELOOP_STR 64
/* Mount namespaces whose rings the kernel keeps at once (allocated as used). */
#define IG_TRACELOOP_RINGS 1024
/* Syscall numbers the string-argument table covers. */
#define IG_TRACELOOP_NRS 512

/* ig_traceloop_call.flags */
#define IG_CALL_ENTERED 1  /* its entry was seen: enter_ns, args, text hold */
#define IG_CALL_RETURNED 2 /* its exit was seen: exit_ns, ret hold */
#define IG_CALL_COMPAT 4   /* made by 32-bit code: nr is an ia32 number */

/* One syscall, as kept in a ring. */
struct ig_traceloop_call {
	__u64 enter_ns;
	__u64 exit_ns;
	__u64 args[6];
	__s64 ret;
	__u32 nr;
	__u32 pid;
	__u32 tid;
	__u32 flags;
	/* Which argument text holds (its index + 1; 0: none), and how many bytes. */
	__u32 str_arg;
	__u32 str_len;
	char comm[IG_TASK_COMM_LEN];
	char text[IG_TRACELOOP_STR];
};

/* A mount namespace's last calls on one CPU: slot next % SLOTS is the next written. */
struct ig_traceloop_ring {
	__u64 next;
	struct ig_traceloop_call calls[IG_TRACELOOP_SLOTS];
};

/* A call in flight, kept per thread from its entry to its exit. */
struct ig_traceloop_pending {
	__u64 enter_ns;
	__u64 mntns_id;
	__u64 args[6];
	__u32 nr;
	__u32 flags;
	__u32 str_arg;
	__u32 str_len;
	char text[IG_TRACELOOP_STR];
};

/* The first process of a container's pid namespace exited (event). */
struct ig_traceloop_exit {
	__u64 timestamp_ns;
	__u64 mntns_id;
	__u32 pid;
	/* As wait(2) reports it: code << 8, or the killing signal. */
	__u32 exit_code;
};

#endif

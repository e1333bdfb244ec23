/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sizes shared by the kernel programs and the Rust side. This header is also
 * read by bindgen (without vmlinux.h), so it only uses __u* types.
 */
#ifndef IG_TYPES_H
#define IG_TYPES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define IG_TASK_COMM_LEN 16
/* Paths are read up to PATH_MAX; longer ones are cut and flagged. */
#define IG_PATH_MAX 4096
/* One component of a path (NAME_MAX + NUL). */
#define IG_NAME_MAX 256
/* Dentries walked when rebuilding a full path from the kernel's view. */
#define IG_PATH_MAX_DEPTH 64 /* a power of two: used as a mask */

/*
 * Who an event is about: the task that did it (or, for a socket's events,
 * the socket's owner). Embedded as `process` in every event that names a
 * task, filled by gadget_fill_process (task.h), decoded by one Rust
 * decoder (event_process.rs) into the pid tid comm uid gid columns.
 */
struct ig_process {
	__u64 mntns_id;
	__u32 pid;
	__u32 tid;
	__u32 ppid; /* 0 unless the gadget shows it (gadget_fill_parent) */
	__u32 uid;
	__u32 gid;
	__u32 pad;
	char comm[IG_TASK_COMM_LEN];
};

/*
 * Indexes in the per-cpu statistics array. Only losses are counted: a
 * counter per delivered event would cost a map lookup on every event, and
 * userspace counts what it receives.
 */
enum ig_stat {
	IG_STAT_LOST = 0,
	IG_STAT_MAX = 1,
};

#endif

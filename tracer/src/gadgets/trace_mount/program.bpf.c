// SPDX-License-Identifier: GPL-2.0
/*
 * trace mount: mount(2) and umount2(2), with arguments, result and latency.
 *
 * Facilities: tracepoints syscalls/sys_{enter,exit}_{mount,umount}. The
 * strings are read at exit, when the kernel has copied them (so their pages
 * are present). The new mount API (fsopen/fsmount/move_mount) is not traced.
 */
#include "common.h"
#include "filter.h"
#include "task.h"
#include "buffer.h"
#include "program.h"

struct mount_start {
	__u64 mntns_id;
	__u64 started_ns;
	__u64 flags;
	const char *src;
	const char *dst;
	const char *fs;
	const char *data;
	__u32 op;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct mount_start);
} mount_starts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_mount_event);
} mount_scratch SEC(".maps");

static __always_inline int mount_enter(struct mount_start *start)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	start->mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(start->mntns_id))
		return 0;
	start->started_ns = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&mount_starts, &tid, start, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int ig_mount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct mount_start start = {
		.src = (const char *)ctx->args[0],
		.dst = (const char *)ctx->args[1],
		.fs = (const char *)ctx->args[2],
		.flags = ctx->args[3],
		.data = (const char *)ctx->args[4],
		.op = IG_MOUNT_MOUNT,
	};

	return mount_enter(&start);
}

SEC("tracepoint/syscalls/sys_enter_umount")
int ig_umount_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct mount_start start = {
		.dst = (const char *)ctx->args[0],
		.flags = ctx->args[1],
		.op = IG_MOUNT_UMOUNT,
	};

	return mount_enter(&start);
}

static __always_inline void read_str(char *dst, __u32 size, const char *src)
{
	dst[0] = 0;
	if (src && bpf_probe_read_user_str(dst, size, src) < 0)
		dst[0] = 0;
}

static __always_inline int mount_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, zero = 0;
	struct mount_start *start = bpf_map_lookup_elem(&mount_starts, &tid);
	struct ig_mount_event *e;
	struct mount_start s;

	if (!start)
		return 0;
	s = *start;
	bpf_map_delete_elem(&mount_starts, &tid);
	e = bpf_map_lookup_elem(&mount_scratch, &zero);
	if (!e)
		return 0;
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	e->latency_ns = e->timestamp_ns - s.started_ns;
	gadget_fill_process(&e->process, s.mntns_id);
	e->flags = s.flags;
	e->retval = ret;
	e->op = s.op;
	read_str(e->src, sizeof(e->src), s.src);
	read_str(e->dst, sizeof(e->dst), s.dst);
	read_str(e->fs, sizeof(e->fs), s.fs);
	/* data is a string for most filesystems, binary for a few: read as text */
	read_str(e->data, sizeof(e->data), s.data);
	gadget_output(e, sizeof(*e));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mount")
int ig_mount_exit(struct trace_event_raw_sys_exit *ctx)
{
	return mount_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_umount")
int ig_umount_exit(struct trace_event_raw_sys_exit *ctx)
{
	return mount_exit(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * trace oomkill: every process the OOM killer picks.
 *
 * Facility: tracepoint oom/mark_victim. It runs in the context of the task
 * whose allocation triggered the kill (KPID, KCOMM; in a memory-limited
 * container usually the victim itself) and carries the victim's pid, comm,
 * uid and resident memory (TPID, TCOMM, PAGES). The container filter is on
 * the triggering task's mount namespace.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "program.h"

#define PAGE_KB 4

SEC("tracepoint/oom/mark_victim")
int ig_mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	__u64 mntns_id = gadget_get_mntns_id();
	struct ig_oomkill_event e = {};
	__u32 loc, off;

	if (gadget_should_discard_current(mntns_id))
		return 0;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	e.mntns_id = mntns_id;
	e.kpid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e.kcomm, sizeof(e.kcomm));
	e.tpid = BPF_CORE_READ(ctx, pid);
	/* Only pid is in the tracepoint everywhere; the rest came with Linux
	 * 6.2-6.6 (and stable backports): each is read where it exists. */
	if (bpf_core_field_exists(ctx->uid))
		e.tuid = BPF_CORE_READ(ctx, uid);
	if (bpf_core_field_exists(ctx->oom_score_adj))
		e.oom_score_adj = BPF_CORE_READ(ctx, oom_score_adj);
	if (bpf_core_field_exists(ctx->anon_rss))
		e.pages = (BPF_CORE_READ(ctx, anon_rss) + BPF_CORE_READ(ctx, file_rss) +
			   BPF_CORE_READ(ctx, shmem_rss)) /
			  PAGE_KB;
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		/* a __data_loc string: offset in the low 16 bits, length above */
		loc = BPF_CORE_READ(ctx, __data_loc_comm);
		off = loc & 0xffff;
		bpf_probe_read_kernel_str(e.tcomm, sizeof(e.tcomm), (void *)ctx + off);
	}
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/*
 * audit seccomp: the decisions of seccomp filters that the kernel logs.
 *
 * Facility: a kprobe on audit_seccomp(syscall, signr, code), the function
 * kernel/seccomp.c calls for every decision it logs: SECCOMP_RET_KILL_*
 * and SECCOMP_RET_LOG always, errno, trap, trace and user_notif when the
 * filter was installed with SECCOMP_FILTER_FLAG_LOG; all of them only as
 * far as /proc/sys/kernel/seccomp/actions_logged allows. It runs in the
 * task whose syscall was judged, before a kill takes effect.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "task.h"
#include "program.h"

/* The code segment selector of 32-bit user code (x86 __USER32_CS). */
#define IG_USER32_CS 0x23

static __always_inline __u32 from_compat_code(void)
{
	struct pt_regs *regs = gadget_user_regs();
	unsigned long cs = 0;

	if (regs)
		bpf_probe_read_kernel(&cs, sizeof(cs), &regs->cs);
	return (cs & 0xffff) == IG_USER32_CS;
}

SEC("kprobe/audit_seccomp")
int ig_audit_seccomp(struct pt_regs *ctx)
{
	struct ig_seccomp_event e = {};
	__u64 mntns_id = gadget_get_mntns_id();

	if (gadget_should_discard_current(mntns_id))
		return 0;
	e.timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e.process, mntns_id);
	e.syscall = (__s64)PT_REGS_PARM1(ctx);
	e.signr = (__s64)PT_REGS_PARM2(ctx);
	e.code = (__u32)PT_REGS_PARM3(ctx);
	e.compat = from_compat_code();
	gadget_output(&e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

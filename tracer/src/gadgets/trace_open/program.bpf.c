// SPDX-License-Identifier: GPL-2.0
/*
 * trace open: open, openat and openat2, with the descriptor or the error.
 *
 * Two variants, chosen at load time (mod.rs):
 * - fexit on do_sys_openat2 (Linux 5.6+, where BPF trampolines are
 *   allowed), which all three calls go through: its arguments and result
 *   are the program's, and no syscall tracepoint is enabled, so the
 *   node's other syscalls keep the fast path (an enabled syscall
 *   tracepoint sends every syscall of every task through the slow one).
 * - tracepoints syscalls/sys_exit_{open,openat,openat2}. One program per
 *   call, at its exit: the arguments are still in the task's saved user
 *   registers (task.h), so no entry program and no map keep them.
 * Either way the file name is read at the exit: by then the kernel has
 * copied it (getname), so its page is present even if the caller never
 * touched it.
 * With --full-path the path is rebuilt from the kernel's view: the opened
 * file's struct path on success; on failure the directory the name was
 * relative to (cwd or dfd) joined with the name.
 */
#include "common.h"
#include "filter.h"
#include "buffer.h"
#include "paths.h"
#include "task.h"
#include "files.h"
#include "program.h"

const volatile bool gadget_full_path = false;
const volatile bool gadget_ignore_errors = false;

#ifndef AT_FDCWD
#define AT_FDCWD -100
#endif

/* A call's arguments, read at its exit from the task's saved registers. */
struct open_start {
	const char *filename;
	__u64 mntns_id;
	__s32 dfd;
	__u32 flags;
	__u32 mode;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ig_open_event);
} open_scratch SEC(".maps");

static __always_inline void fill_full_path(struct ig_open_event *e, __s32 dfd, long ret)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct path base;
	struct file *file;
	__u32 off;

	if (ret >= 0) {
		/* The opened file itself. */
		file = gadget_current_file(ret);
		if (!file)
			return;
		base = BPF_CORE_READ(file, f_path);
	} else if (e->path[0] == '/') {
		/* A failed open of an absolute name: the name as given. */
		e->full_path_size = bpf_probe_read_kernel_str(e->full_path, IG_PATH_MAX, e->path);
		return;
	} else if (dfd == AT_FDCWD) {
		/* A failed open of a relative name: its directory, then the name. */
		base = BPF_CORE_READ(task, fs, pwd);
	} else {
		file = gadget_current_file(dfd);
		if (!file)
			return;
		base = BPF_CORE_READ(file, f_path);
	}
	/* One call site: the path walk is inlined once. */
	off = gadget_read_path(&base, e->full_path);
	if (ret >= 0) {
		e->full_path_size = off + 1;
		return;
	}
	/* Directory then name, each in one half, so the verifier sees constant bounds. */
	barrier_var(off);
	off &= IG_PATH_MAX - 1;
	if (off == 0 || off > IG_PATH_MAX / 2)
		return;
	if (off > 1) {
		e->full_path[off] = '/';
		off++;
	}
	barrier_var(off);
	if (off > IG_PATH_MAX / 2 + 1)
		return;
	{
		long n =
			bpf_probe_read_kernel_str(&e->full_path[off], IG_PATH_MAX / 2 - 1, e->path);

		e->full_path_size = n > 0 ? off + n : off;
	}
}

enum open_call { OPEN, OPENAT, OPENAT2 };

/* Sends the event of one open whose task passed the filter. */
static __always_inline int open_emit(const struct open_start *s, long ret)
{
	struct ig_open_event *e;
	__u32 zero = 0;
	__u64 size;
	long n;

	if (!s->filename)
		return 0;
	e = bpf_map_lookup_elem(&open_scratch, &zero);
	if (!e)
		return 0;
	e->timestamp_ns = bpf_ktime_get_boot_ns();
	gadget_fill_process(&e->process, s->mntns_id);
	e->retval = ret;
	e->flags = s->flags;
	e->mode = s->mode;
	e->full_path_size = 0;
	e->pad = 0;
	n = bpf_probe_read_user_str(e->path, IG_PATH_MAX, s->filename);
	e->path_size = n > 0 ? n : 0;
	if (n <= 0)
		e->path[0] = 0;
	if (gadget_full_path) {
		fill_full_path(e, s->dfd, ret);
		size = sizeof(*e);
	} else {
		size = offsetof(struct ig_open_event, path) + e->path_size;
		if (size > sizeof(*e))
			size = sizeof(*e);
	}
	gadget_output(e, size);
	return 0;
}

/* Whether this task's open is shown at all: checked before anything is read. */
static __always_inline bool open_wanted(struct open_start *s, long ret)
{
	s->mntns_id = gadget_get_mntns_id();
	if (gadget_should_discard_current(s->mntns_id))
		return false;
	return !(ret < 0 && gadget_ignore_errors);
}

static __always_inline int open_exit(long ret, enum open_call call)
{
	struct open_start s = {};
	struct pt_regs *uregs, regs;

	if (!open_wanted(&s, ret))
		return 0;
	uregs = gadget_user_regs();
	if (!uregs || bpf_probe_read_kernel(&regs, sizeof(regs), uregs))
		return 0;
	if (call == OPEN) {
		/* open(filename, flags, mode) */
		s.filename = (const char *)regs.di;
		s.dfd = AT_FDCWD;
		s.flags = regs.si;
		s.mode = regs.dx;
	} else {
		/* openat(dfd, filename, flags, mode), openat2(dfd, filename, how, size) */
		s.dfd = regs.di;
		s.filename = (const char *)regs.si;
		if (call == OPENAT) {
			s.flags = regs.dx;
			s.mode = regs.r10;
		} else {
			struct open_how how = {};

			bpf_probe_read_user(&how, sizeof(how), (void *)regs.dx);
			s.flags = how.flags;
			s.mode = how.mode;
		}
	}
	return open_emit(&s, ret);
}

/*
 * do_sys_openat2(dfd, filename, how): open, openat and openat2 all end
 * here. It returns long on older kernels and int on newer ones (7.2): read
 * as int (a descriptor or an errno fits), since the upper half of an int
 * result is not sign-extended in the register.
 */
SEC("fexit/do_sys_openat2")
int BPF_PROG(ig_open_fexit, int dfd, const char *filename, struct open_how *how, int ret)
{
	struct open_start s = {};

	if (!open_wanted(&s, ret))
		return 0;
	s.dfd = dfd;
	s.filename = filename;
	s.flags = BPF_CORE_READ(how, flags);
	s.mode = BPF_CORE_READ(how, mode);
	return open_emit(&s, ret);
}

SEC("tracepoint/syscalls/sys_exit_open")
int ig_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, OPEN);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ig_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, OPENAT);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int ig_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret, OPENAT2);
}

char LICENSE[] SEC("license") = "GPL";

/* SPDX-License-Identifier: GPL-2.0 */
/* The current task's open files. */
#ifndef IG_FILES_H
#define IG_FILES_H

/* The struct file behind descriptor fd of the current task, or NULL. */
static __always_inline struct file *gadget_current_file(__s32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;

	if (fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

#endif

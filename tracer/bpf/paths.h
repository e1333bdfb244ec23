/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Rebuilds the path of a `struct path` as the task's mount namespace sees it,
 * by walking dentries up to each mount's root and crossing to the parent
 * mount. bpf_d_path is not allowed from tracepoints, hence the walk.
 */
#ifndef IG_PATHS_H
#define IG_PATHS_H

#ifndef container_of
#define container_of(ptr, type, member)                                                            \
	((type *)((void *)(ptr)-bpf_core_field_offset(type, member)))
#endif

/*
 * Walk state kept in a per-cpu map: the component list does not fit the
 * stack, and a counter kept in map memory is a value the verifier does not
 * track, so the states of two iterations of a loop below differ only in the
 * loop index and each step is verified about once (counters kept in
 * registers would multiply the states: over the 1M-instruction limit).
 */
struct gadget_path_walk {
	const unsigned char *names[IG_PATH_MAX_DEPTH];
	__u32 depth;
	__u32 off;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gadget_path_walk);
} gadget_path_scratch SEC(".maps");

/*
 * Writes the absolute path of p into buf (IG_PATH_MAX bytes, NUL-terminated)
 * and returns its length without the NUL, or 0 if it could not be read.
 *
 * Two bounded loops (verifier bounded-loop support, Linux 5.3+), not
 * bpf_loop (5.17+): a callback is a subprogram that a 5.10 verifier cannot
 * count ("number of funcs in func_info doesn't match number of subprogs"),
 * and a plain loop costs no indirect call per step. Up: from the dentry to
 * the namespace's root, crossing each mount to its parent, remembering the
 * names. Down: writing "/<name>" for each from the root.
 */
static __always_inline __u32 gadget_read_path(struct path *p, char *buf)
{
	__u32 zero = 0;
	struct gadget_path_walk *walk = bpf_map_lookup_elem(&gadget_path_scratch, &zero);
	struct dentry *dentry = BPF_CORE_READ(p, dentry);
	struct vfsmount *vfsmnt = BPF_CORE_READ(p, mnt);
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	__u32 i, o;

	if (!walk)
		return 0;
	walk->depth = 0;
	walk->off = 0;
	/* Crossing a mount takes a step too: allow some beyond the depth. */
#pragma clang loop unroll(disable)
	for (i = 0; i < IG_PATH_MAX_DEPTH + 16; i++) {
		struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		struct mount *mnt_parent;

		if (dentry == mnt_root || dentry == parent) {
			if (dentry != mnt_root)
				break; /* detached from its mount */
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt)
				break; /* the root of the namespace */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			continue;
		}
		walk->names[walk->depth & (IG_PATH_MAX_DEPTH - 1)] =
			BPF_CORE_READ(dentry, d_name.name);
		walk->depth++;
		if (walk->depth >= IG_PATH_MAX_DEPTH)
			break;
		dentry = parent;
	}

#pragma clang loop unroll(disable)
	for (i = 0; i < IG_PATH_MAX_DEPTH; i++) {
		long n;

		if (i >= walk->depth)
			break;
		o = walk->off & (IG_PATH_MAX - 1);
		if (o > IG_PATH_MAX - IG_NAME_MAX - 2)
			break;
		buf[o] = '/';
		n = bpf_probe_read_kernel_str(
			&buf[o + 1], IG_NAME_MAX,
			walk->names[(walk->depth - 1 - i) & (IG_PATH_MAX_DEPTH - 1)]);
		walk->off = o + (n > 1 ? n : 1);
	}
	o = walk->off;
	if (o == 0) {
		buf[0] = '/';
		o = 1;
	}
	barrier_var(o);
	buf[o & (IG_PATH_MAX - 1)] = 0;
	return o;
}

#endif

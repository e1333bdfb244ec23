/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Rebuilds the path of a `struct path` as the task's mount namespace sees it,
 * by walking dentries up to each mount's root and crossing to the parent
 * mount. bpf_d_path is not allowed from tracepoints, hence the walk.
 */
#ifndef IG_PATHS_H
#define IG_PATHS_H

#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((void *)(ptr) - bpf_core_field_offset(type, member)))
#endif

/* Walk state kept in a per-cpu map: the component list does not fit the stack. */
struct gadget_path_walk {
	const unsigned char *names[IG_PATH_MAX_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gadget_path_walk);
} gadget_path_scratch SEC(".maps");

/*
 * Field offsets are resolved by CO-RE in the calling program and handed to the
 * callback: aya 0.14 poisons CO-RE relocations inside bpf_loop callbacks.
 */
struct gadget_path_offsets {
	__u32 vfsmount_mnt_root;
	__u32 dentry_d_parent;
	__u32 dentry_d_name_name;
	__u32 mount_mnt_parent;
	__u32 mount_mnt_mountpoint;
	__u32 mount_mnt;
};

struct gadget_walk_up_ctx {
	struct gadget_path_offsets off;
	void *dentry;
	void *mnt; /* struct mount */
	struct gadget_path_walk *walk;
	__u32 depth;
};

static __always_inline void *gadget_read_ptr(void *base, __u32 off)
{
	void *p = NULL;

	bpf_probe_read_kernel(&p, sizeof(p), base + off);
	return p;
}

/* One step towards the root: record a name, or cross to the parent mount. */
static long gadget_walk_up(__u64 index, struct gadget_walk_up_ctx *c)
{
	void *vfsmnt = c->mnt + c->off.mount_mnt;
	void *mnt_root = gadget_read_ptr(vfsmnt, c->off.vfsmount_mnt_root);
	void *parent = gadget_read_ptr(c->dentry, c->off.dentry_d_parent);
	void *mnt_parent;

	if (c->dentry == mnt_root || c->dentry == parent) {
		if (c->dentry != mnt_root)
			return 1; /* detached from its mount */
		mnt_parent = gadget_read_ptr(c->mnt, c->off.mount_mnt_parent);
		if (mnt_parent == c->mnt)
			return 1; /* the root of the namespace */
		c->dentry = gadget_read_ptr(c->mnt, c->off.mount_mnt_mountpoint);
		c->mnt = mnt_parent;
		return 0;
	}
	c->walk->names[c->depth & (IG_PATH_MAX_DEPTH - 1)] =
		gadget_read_ptr(c->dentry, c->off.dentry_d_name_name);
	c->depth++;
	if (c->depth >= IG_PATH_MAX_DEPTH)
		return 1;
	c->dentry = parent;
	return 0;
}

struct gadget_write_down_ctx {
	struct gadget_path_walk *walk;
	char *buf;
	__u32 depth;
	__u32 off;
};

/* Appends "/<name>" for the index-th component from the root. */
static long gadget_write_down(__u64 index, struct gadget_write_down_ctx *c)
{
	__u32 o = c->off;
	long n;

	if (index >= c->depth)
		return 1;
	/* barrier_var + mask: keeps the bound the verifier needs */
	barrier_var(o);
	o &= IG_PATH_MAX - 1;
	if (o > IG_PATH_MAX - IG_NAME_MAX - 2)
		return 1;
	c->buf[o] = '/';
	n = bpf_probe_read_kernel_str(&c->buf[o + 1], IG_NAME_MAX,
				      c->walk->names[(c->depth - 1 - index) & (IG_PATH_MAX_DEPTH - 1)]);
	c->off = o + (n > 1 ? n : 1);
	return 0;
}

/*
 * Writes the absolute path of p into buf (IG_PATH_MAX bytes, NUL-terminated)
 * and returns its length without the NUL, or 0 if it could not be read.
 * Both loops run under bpf_loop, so the verifier checks each step once.
 */
static __always_inline __u32 gadget_read_path(struct path *p, char *buf)
{
	__u32 zero = 0;
	struct gadget_path_walk *walk = bpf_map_lookup_elem(&gadget_path_scratch, &zero);
	struct vfsmount *vfsmnt = BPF_CORE_READ(p, mnt);
	struct gadget_walk_up_ctx up = {
		.off = {
			.vfsmount_mnt_root = bpf_core_field_offset(struct vfsmount, mnt_root),
			.dentry_d_parent = bpf_core_field_offset(struct dentry, d_parent),
			.dentry_d_name_name = bpf_core_field_offset(struct dentry, d_name) +
					      bpf_core_field_offset(struct qstr, name),
			.mount_mnt_parent = bpf_core_field_offset(struct mount, mnt_parent),
			.mount_mnt_mountpoint = bpf_core_field_offset(struct mount, mnt_mountpoint),
			.mount_mnt = bpf_core_field_offset(struct mount, mnt),
		},
		.dentry = BPF_CORE_READ(p, dentry),
		.mnt = container_of(vfsmnt, struct mount, mnt),
		.depth = 0,
	};
	struct gadget_write_down_ctx down = {};
	__u32 o;

	if (!walk)
		return 0;
	up.walk = walk;
	/* Crossing a mount takes a step too: allow some beyond the depth. */
	bpf_loop(IG_PATH_MAX_DEPTH + 16, gadget_walk_up, &up, 0);

	down.walk = walk;
	down.buf = buf;
	down.depth = up.depth;
	down.off = 0;
	bpf_loop(IG_PATH_MAX_DEPTH, gadget_write_down, &down, 0);
	if (down.off == 0) {
		buf[0] = '/';
		down.off = 1;
	}
	o = down.off;
	barrier_var(o);
	buf[o & (IG_PATH_MAX - 1)] = 0;
	return down.off;
}

#endif

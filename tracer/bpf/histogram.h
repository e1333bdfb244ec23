/* SPDX-License-Identifier: GPL-2.0 */
/* Power-of-two histograms counted per CPU, for the profile gadgets. */
#ifndef IG_HISTOGRAM_H
#define IG_HISTOGRAM_H

/* The bucket of v: 0 for 0, else 1 + floor(log2(v)), so bucket k holds
 * [2^(k-1), 2^k) (userspace names them so: profile.rs). */
static __always_inline __u32 gadget_bucket_of(__u64 v)
{
	__u32 b = 0;

	if (!v)
		return 0;
#pragma unroll
	for (int shift = 32; shift > 0; shift >>= 1) {
		if (v >= (1ULL << shift)) {
			v >>= shift;
			b += shift;
		}
	}
	return b + 1;
}

/* Adds one to key's count in a per-CPU hash map (this CPU's own copy). */
static __always_inline void gadget_count_in(void *map, const void *key)
{
	__u64 one = 1, *count = bpf_map_lookup_elem(map, key);

	if (count)
		*count += 1;
	else
		bpf_map_update_elem(map, key, &one, BPF_NOEXIST);
}

#endif

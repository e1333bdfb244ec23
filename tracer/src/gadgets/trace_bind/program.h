/* SPDX-License-Identifier: GPL-2.0 */
/* trace bind: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_BIND_H
#define IG_TRACE_BIND_H

#include "types.h"

/* Socket options in effect at bind, as bits of ig_bind_event.opts. */
enum ig_bind_opt {
	IG_BIND_REUSEADDR = 1,
	IG_BIND_REUSEPORT = 2,
	IG_BIND_FREEBIND = 4,
	IG_BIND_TRANSPARENT = 8,
	IG_BIND_NO_PORT = 16,
};

struct ig_bind_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__s32 retval;
	__u32 bound_dev_if;
	__u16 family;
	__u16 port; /* host byte order */
	__u16 protocol;
	__u16 opts;
	__u8 addr[16];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* trace sni: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_SNI_H
#define IG_TRACE_SNI_H

#include "types.h"

/*
 * Bytes of a TLS ClientHello record copied for userspace to find the server
 * name in: enough for the hellos of common clients, post-quantum key shares
 * (which may come before server_name) included.
 */
#define IG_SNI_MAX_HELLO 4096

struct ig_sni_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__u64 netns_id;
	__u32 hello_len; /* bytes of hello copied */
	__u32 pad;
	/* Only hello_len bytes are sent: the event is cut after them. */
	__u8 hello[IG_SNI_MAX_HELLO];
};

#endif

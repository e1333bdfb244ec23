/* SPDX-License-Identifier: GPL-2.0 */
/* trace ssl: the event sent to userspace. Rust types are generated from this file. */
#ifndef IG_TRACE_SSL_H
#define IG_TRACE_SSL_H

#include "types.h"

/*
 * Plaintext bytes copied per call at most (--max-bytes): a TLS record
 * carries 16 KiB; the first half of one says what a call was about, and
 * the event and its copy slack fit the per-CPU scratch value.
 */
#define IG_SSL_MAX_DATA 8192

/* The function a call went through: its entry program says which. */
enum ig_ssl_op {
	IG_SSL_OP_SSL_READ = 0,
	IG_SSL_OP_SSL_WRITE = 1,
	IG_SSL_OP_SSL_READ_EX = 2,
	IG_SSL_OP_SSL_WRITE_EX = 3,
	IG_SSL_OP_GNUTLS_RECV = 4,
	IG_SSL_OP_GNUTLS_SEND = 5,
};

struct ig_ssl_event {
	__u64 timestamp_ns;
	struct ig_process process;
	__u64 latency_ns;
	/* Plaintext bytes the call moved (its result; for the _ex forms the count they write back). */
	__u64 len;
	__u32 op;	/* enum ig_ssl_op */
	__u32 data_len; /* bytes of data copied: min(len, --max-bytes) */
	/* Only data_len bytes are sent: the event is cut after them. */
	__u8 data[IG_SSL_MAX_DATA];
};

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* Everything every gadget program includes first. */
#ifndef IG_COMMON_H
#define IG_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "types.h"

#endif

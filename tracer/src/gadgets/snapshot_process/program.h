/* SPDX-License-Identifier: GPL-2.0 */
/* snapshot process: one record per task. Rust types are generated from this file. */
#ifndef IG_SNAPSHOT_PROCESS_H
#define IG_SNAPSHOT_PROCESS_H

#include "types.h"

/* Each record is one struct ig_process (types.h): the task iterator writes nothing else. */

#endif

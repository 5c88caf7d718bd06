// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * gcap kernel side: uprobes on the Go runtime and libraries, two BTF tracepoints and a
 * perf event, built as one object (one libbpf-rs skeleton) from this file and the parts it
 * includes below, in order.
 *
 * Design rules (why: docs/ARCHITECTURE.md section 2; measured: docs/BENCHMARKS.md):
 *  - every uprobe is attached after the stack-check prologue (at PUSHQ BP, which the kernel
 *    emulates: ~0.7 us per hit instead of ~10 us at the first instruction, and no double hit
 *    after morestack). Userspace computes those offsets; nothing here depends on them.
 *  - never uretprobes (they crash Go); function returns are ordinary uprobes on each RET.
 *  - every record is submitted with BPF_RB_NO_WAKEUP (a wakeup costs 2-7 us per event);
 *    userspace drains the ring on a timer.
 *  - never bpf_probe_write_user.
 *
 * Configuration is a .rodata const per loaded object (one object per target binary): the
 * verifier sees the offsets as constants and dead-code-eliminates version branches, so the
 * hot path has no map lookup. A per-tgid config map would let one object serve several Go
 * versions but costs a hash lookup (~30-50 ns) on every hit of every probe.
 */
#include "mini.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "gcap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile struct gcap_config cfg = {};

/* Never read: makes clang emit every type of struct gcap_abi into the object's BTF. */
static const struct gcap_abi *const gcap_abi __attribute__((used));

#include "probe.h"       /* the ring buffer, counters, target reads, the cookie's JBE rule */
#include "stacks.h"      /* user stacks, interned in the `stacks` map */
#include "lifecycle.h"   /* goroutine lifecycle, GC and stop-the-world uprobes */
#include "kernel.h"      /* the `targets` filter; sched_switch, sched_process_exit */
#include "traceparent.h" /* the Traceparent header, found in a Go header map */
#include "spans.h"       /* HTTP server and client, SQL spans */
#include "samples.h"     /* CPU samples */

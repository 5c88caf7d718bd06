// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * The program gcap's budget calibrates probe hits with: attached to a tiny function in
 * gcap's own binary (on an instruction the kernel emulates, then on one it single-steps),
 * it does nothing, so timing calls of that function with and without it measures what the
 * kernel charges a thread for one uprobe hit (its own run time comes from the kernel's
 * BPF statistics and is subtracted). A separate object: loading it costs no verification
 * of gcap's real programs.
 */
#include "mini.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int calibrate(struct pt_regs *ctx)
{
	return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Minimal stand-in for vmlinux.h: gcap reads Go memory at fixed offsets supplied from
 * userspace, so it needs no kernel types except pt_regs (a stable x86-64 ABI) and the two
 * task_struct fields used by the sched tracepoints (relocated with CO-RE against the
 * running kernel's BTF through preserve_access_index, so their offsets are never guessed).
 */
#ifndef GCAP_MINI_H
#define GCAP_MINI_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
};

/* Flags of bpf_get_stack, bpf_ringbuf_submit and bpf_map_update_elem (Linux's
 * include/uapi/linux/bpf.h). */
#define BPF_F_USER_STACK (1ULL << 8)
#define BPF_RB_NO_WAKEUP (1ULL << 0)
#define BPF_NOEXIST 1 /* bpf_map_update_elem: create only */

/* x86-64 struct pt_regs, as the kernel lays it out for uprobe contexts. */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* CO-RE: only the named fields are relocated; their real offsets come from kernel BTF. */
struct thread_struct {
	unsigned long fsbase; /* the thread's FS base: Go keeps g at fsbase - 8 */
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	struct thread_struct thread;
} __attribute__((preserve_access_index));

/* Context of BPF_PROG_TYPE_PERF_EVENT programs (Linux's include/uapi/linux/bpf_perf_event.h; on
 * x86-64 bpf_user_pt_regs_t is struct pt_regs). */
struct bpf_perf_event_data {
	struct pt_regs regs;
	__u64 sample_period;
	__u64 addr;
};

#endif

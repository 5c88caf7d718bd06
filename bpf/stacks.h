/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): user stacks, walked by frame pointers or
 * by the kernel, and interned in the `stacks` map so that a record carries a 4-byte id.
 */

/* Largest stack a block record can reference; the real depth is the map's value_size,
 * which userspace sets before loading (lifecycle: 32 frames, full: 127). */
#define GCAP_MAX_STACK 127

/*
 * Stacks are deduplicated in the kernel: a block record (or CPU sample) carries a 4-byte
 * stack id, and userspace reads each distinct stack once. Goroutines block at a few hundred
 * distinct sites, millions of times, so this keeps block records at 40 bytes instead of
 * 40 + 8*depth. The id is a 31-bit hash of the PCs (intern_stack); the value is the PCs,
 * zero-filled after the outermost frame. An id, once handed out, never changes meaning: a
 * different stack with the same hash, or a full map, is reported as a lost stack.
 *
 * Not a BPF_MAP_TYPE_STACK_TRACE with bpf_get_stackid: its user-stack walk (perf's callchain
 * code) took ~950 ns for a 6-frame Go stack at gopark on kernel 6.18, the frame-pointer walk
 * of walk_entry_stack ~250 ns (docs/BENCHMARKS.md). CPU samples, which may interrupt the
 * thread in the kernel, still let the kernel walk the user stack (bpf_get_stack, rare).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, GCAP_MAX_STACK * sizeof(__u64)); /* cfg.stack_depth frames, set by userspace */
	__uint(max_entries, 16384);
} stacks SEC(".maps");

/* Scratch space for the stack being walked (too big for the 512-byte BPF stack), one slot
 * per nesting level: since 6.0 a uprobe program can be preempted on its CPU by another one
 * (see count()), which then takes the next slot. */
#define STACK_SLOTS 4
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STACK_SLOTS);
	__type(key, __u32);
	__type(value, __u64[GCAP_MAX_STACK]);
} stack_bufs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} stack_nest SEC(".maps");

#define GCAP_EFAULT 14
#define GCAP_EBUSY 16
#define GCAP_EEXIST 17

/* The id of the stack in buf[0 .. cfg.stack_depth) (PCs, zero after the outermost frame),
 * adding it to `stacks` if new; < 0 (-errno) when it cannot be stored: another stack has
 * the same 31-bit hash, or the map is full. */
static __always_inline long intern_stack(__u64 *buf)
{
	if (!buf[0])
		return -GCAP_EFAULT; /* no user stack (as bpf_get_stackid said) */
	__u64 h = 0xcbf29ce484222325ULL; /* FNV-1a over the PCs */
	for (int i = 0; i < GCAP_MAX_STACK; i++) {
		if (i >= cfg.stack_depth || !buf[i])
			break;
		h = (h ^ buf[i]) * 0x100000001b3ULL;
	}
	__u32 id = (__u32)(h ^ (h >> 32)) & 0x7fffffff;
	__u64 *have = bpf_map_lookup_elem(&stacks, &id);
	if (!have) {
		long r = bpf_map_update_elem(&stacks, &id, buf, BPF_NOEXIST);
		if (r != -GCAP_EEXIST)
			return r ? r : id;
		/* another CPU stored this id just now: compare with it */
		have = bpf_map_lookup_elem(&stacks, &id);
		if (!have)
			return -GCAP_EEXIST;
	}
	for (int i = 0; i < GCAP_MAX_STACK; i++) {
		if (i >= cfg.stack_depth)
			break;
		if (have[i] != buf[i])
			return -GCAP_EEXIST;
		if (!buf[i])
			break;
	}
	return id;
}

/*
 * The user stack at a function-entry probe (before the frame is built: at PUSH RBP, or at
 * the stack-check JBE on Go 1.19/1.20), by Go's frame pointers: the probed PC, the return
 * address at [SP], then each frame's saved return address up the RBP chain, which ends at 0
 * at the goroutine's first frame. What bpf_get_stackid gave (the kernel adds [SP] for
 * probes on a PUSH RBP since 6.11), at a quarter of its cost, and [SP] on the JBE sites too.
 */
static __always_inline void walk_entry_stack(struct pt_regs *ctx, __u64 *buf)
{
	__u64 fp = ctx->bp;
	buf[0] = ctx->ip;
	buf[1] = rd(ctx->sp);
	for (int i = 2; i < GCAP_MAX_STACK; i++) {
		if (i >= cfg.stack_depth)
			break;
		__u64 fr[2] = {}; /* saved RBP, return address */
		if (fp && !bpf_probe_read_user(fr, sizeof(fr), (const void *)fp)) {
			buf[i] = fr[1];
			fp = fr[0];
		} else {
			buf[i] = 0;
			fp = 0;
		}
	}
}

/* Takes this CPU's next free scratch slot (released with put_stack_buf), or returns 0. */
static __always_inline __u64 *get_stack_buf(__u64 **nest)
{
	__u32 zero = 0;
	*nest = bpf_map_lookup_elem(&stack_nest, &zero);
	if (!*nest)
		return 0;
	__u32 slot = __sync_fetch_and_add(*nest, 1);
	return slot < STACK_SLOTS ? bpf_map_lookup_elem(&stack_bufs, &slot) : 0;
}

static __always_inline void put_stack_buf(__u64 *nest)
{
	if (nest)
		__sync_fetch_and_sub(nest, 1);
}

/* Stack id of the user stack at an entry probe (see walk_entry_stack), or < 0. */
static __always_inline long entry_stack_id(struct pt_regs *ctx)
{
	__u64 *nest;
	__u64 *buf = get_stack_buf(&nest);
	long r = -GCAP_EBUSY;
	if (buf) {
		walk_entry_stack(ctx, buf);
		r = intern_stack(buf);
	}
	put_stack_buf(nest);
	return r;
}

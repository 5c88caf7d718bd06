/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): what every program is built from. The
 * `events` ring buffer that carries the records, the per-CPU hit and loss counters, reads
 * of the target's memory, and the stack-check rule of the attach cookie.
 */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by userspace before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GCAP_P_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, GCAP_LOST_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

static __always_inline void count(__u32 probe)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &probe);
	/* atomic: since 6.0 a uprobe program can be preempted on its CPU by another one */
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void count_lost(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&lost, &what);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void *reserve(__u64 size, __u8 kind, __u8 probe, __u32 flags)
{
	struct gcap_hdr *h = bpf_ringbuf_reserve(&events, size, 0);
	if (!h) {
		count_lost(GCAP_LOST_RINGBUF);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	h->ts_ns = bpf_ktime_get_ns();
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->kind = kind;
	h->probe = probe;
	h->cpu = bpf_get_smp_processor_id();
	h->flags = flags;
	return h;
}

static __always_inline void submit(void *ev)
{
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

/* Reading the target (never writing it). */

static __always_inline __u64 rd(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
}

/* Bounded copy of a Go string {ptr, len} into a record field of `size` bytes with `read`;
 * stores the full length in *len_out. */
#define COPY_GOSTR_WITH(read, dst, size, ptr, len, len_out)                        \
	do {                                                                       \
		__u64 _n = (len);                                                  \
		*(len_out) = (__u32)(_n > 0xffffffffULL ? 0xffffffffULL : _n);     \
		if (_n > (size))                                                   \
			_n = (size);                                               \
		if (_n > 0 && (ptr))                                               \
			read((dst), _n, (const void *)(ptr));                      \
	} while (0)

#define COPY_GOSTR(dst, size, ptr, len, len_out)                                   \
	COPY_GOSTR_WITH(bpf_probe_read_user, dst, size, ptr, len, len_out)

/* Same, in a sleepable program: bpf_copy_from_user can fault the page in (a string literal
 * in the binary's rodata that the process has not touched yet is not mapped, and
 * bpf_probe_read_user fails on it). */
#define COPY_GOSTR_S(dst, size, ptr, len, len_out)                                 \
	COPY_GOSTR_WITH(bpf_copy_from_user, dst, size, ptr, len, len_out)

/* x86 EFLAGS bits tested by JBE. */
#define X86_CF 0x001
#define X86_ZF 0x040

/*
 * Sites attached with GCAP_COOKIE_JBE are on the stack-check JBE of the prologue, not on a
 * PUSHQ BP: Go 1.19 (and 1.20) frames start `CMPQ SP, 16(R14); JBE morestack; SUBQ $n, SP`,
 * and a SUBQ is single-stepped by the kernel (measured ~22 us per hit) while a Jcc is
 * emulated (~0.8 us). The CMP has already run, so EFLAGS says whether the JBE is taken; when
 * it is, the function calls morestack and restarts from its entry, so this hit is not the
 * call: drop it (the restart hits again and is recorded). Exactly one record per call, as at
 * a PUSHQ BP site.
 */
static __always_inline bool restarting(struct pt_regs *ctx)
{
	return (bpf_get_attach_cookie(ctx) & GCAP_COOKIE_JBE) && (ctx->flags & (X86_CF | X86_ZF));
}

// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * gcap kernel side: uprobes on the Go runtime plus two BTF tracepoints.
 *
 * Design rules (measured, see shared/reference/build-and-probe-cost.md):
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

/* Upper bound of the injectglist walk: one netpoll batch is up to 128 epoll events, each
 * readying up to 2 goroutines; GC sweep-waiter lists can be longer (counted as lost). */
#define GCAP_GLIST_MAX 512
/* Largest stack a block record can reference; the real depth is the map's value_size,
 * which userspace sets before loading (lifecycle: 32 frames, full: 127). */
#define GCAP_MAX_STACK 127

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

/* tgids being captured (filled by userspace at attach); filters the global tracepoints. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

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

static __always_inline __u64 rd(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (const void *)addr);
	return v;
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

/* x86 EFLAGS bits tested by JBE. */
#define X86_CF 0x001
#define X86_ZF 0x040

/*
 * Sites attached with cookie 1 are on the stack-check JBE of the prologue, not on a PUSHQ
 * BP: Go 1.19 (and 1.20) frames start `CMPQ SP, 16(R14); JBE morestack; SUBQ $n, SP`, and
 * a SUBQ is single-stepped by the kernel (measured ~22 us per hit) while a Jcc is emulated
 * (~0.8 us). The CMP has already run, so EFLAGS says whether the JBE is taken; when it is,
 * the function calls morestack and restarts from its entry, so this hit is not the call:
 * drop it (the restart hits again and is recorded). Exactly one record per call, as at a
 * PUSHQ BP site.
 */
/* Attach cookie bits (ProbeSite::cookie in capture/src/probes/plan.rs). */
#define GCAP_COOKIE_JBE 1
#define GCAP_COOKIE_NEWG_RBX 2
#define GCAP_COOKIE_PANIC_CHECK 4

static __always_inline bool restarting(struct pt_regs *ctx)
{
	return (bpf_get_attach_cookie(ctx) & GCAP_COOKIE_JBE) && (ctx->flags & (X86_CF | X86_ZF));
}

static __always_inline void submit(void *ev)
{
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
}

/* Most bytes one bpf_probe_read_user covers to fetch several fields of a g at once
 * (newproc1_ret): a probe read costs ~50-60 ns however small, and one 160-byte read of the
 * new g beat four 8-byte ones by ~130 ns (docs/BENCHMARKS.md). */
#define G_SPAN_MAX 192

/*
 * goid of the goroutine `g` (R14). When g is g0 (goid 0: newproc1, ready, stopTheWorld run
 * on the system stack), the user goroutine that switched to the system stack is still
 * g0.m.curg, so report that one and say so in flags. When the M runs no user goroutine
 * (the scheduler, sysmon, timers run from schedule()) the answer is 0 = unknown.
 */
static __always_inline __u64 user_goid(__u64 g, __u32 *flags)
{
	__u64 goid = rd(g + cfg.g_goid);
	if (goid)
		return goid;
	__u64 m = rd(g + cfg.g_m);
	__u64 curg = m ? rd(m + cfg.m_curg) : 0;
	if (curg) {
		*flags |= GCAP_F_WAKER_CURG;
		return rd(curg + cfg.g_goid);
	}
	*flags |= GCAP_F_WAKER_UNKNOWN;
	return 0;
}

/*
 * user_goid for a probe that runs on the system stack (g = g0): the user goroutine is
 * g.m.curg without reading g0's goid first (one probe read less: ready() always runs on
 * g0). Also right when g is a user goroutine: then g.m.curg is g itself.
 */
static __always_inline __u64 curg_goid(__u64 g, __u32 *flags)
{
	__u64 m = rd(g + cfg.g_m);
	__u64 curg = m ? rd(m + cfg.m_curg) : 0;
	if (!curg) {
		*flags |= GCAP_F_WAKER_UNKNOWN;
		return 0;
	}
	if (curg != g)
		*flags |= GCAP_F_WAKER_CURG;
	return rd(curg + cfg.g_goid);
}

static __always_inline int emit_goid(__u8 kind, __u8 probe, __u64 goid, __u32 flags)
{
	struct gcap_ev_goid *e = reserve(sizeof(*e), kind, probe, flags);
	if (!e)
		return 0;
	e->goid = goid;
	submit(e);
	return 0;
}

static __always_inline int emit_runtime(__u8 kind, __u8 probe, __u64 goid, __u64 arg, __u32 flags)
{
	struct gcap_ev_runtime *e = reserve(sizeof(*e), kind, probe, flags);
	if (!e)
		return 0;
	e->goid = goid;
	e->arg = arg;
	submit(e);
	return 0;
}

/* The new goroutine, fully initialised (goid assigned on every version; before 1.24 only
 * after casgstatus(_Gdead -> _Grunnable), so not at newproc1's entry). Preferred site: the
 * `CALL runtime.runqput(pp, newg, true)` right after newproc1 returns in newproc.func1
 * (newg in RBX; a CALL is emulated by the kernel, ~1 us). Fallback: every RET of newproc1
 * (newg in RAX; a RET is single-stepped, ~10 us). Both run on g0. */
SEC("uprobe")
int newproc1_ret(struct pt_regs *ctx)
{
	count(GCAP_P_NEWPROC1_RET);
	/* Read both registers unconditionally: a conditional load would be compiled into
	 * arithmetic on the ctx pointer, which the verifier rejects. */
	__u64 ax = ctx->ax, bx = ctx->bx;
	__u64 g = (bpf_get_attach_cookie(ctx) & GCAP_COOKIE_NEWG_RBX) ? bx : ax;
	__u32 flags = 0;
	/* goid, parentGoid, gopc and startpc of the new g: one read of [goid, startpc + 8)
	 * when they are that close (Go 1.19-1.27: 160-168 bytes). */
	__u64 goid, parent = 0, gopc, startpc;
	__u64 hi = cfg.g_startpc > cfg.g_gopc ? cfg.g_startpc : cfg.g_gopc;
	if (cfg.g_parent_goid > hi)
		hi = cfg.g_parent_goid;
	if (cfg.g_goid < cfg.g_gopc && cfg.g_goid < cfg.g_startpc &&
	    (!cfg.g_parent_goid || cfg.g_goid < cfg.g_parent_goid) &&
	    hi + 8 - cfg.g_goid <= G_SPAN_MAX) {
		__u64 buf[G_SPAN_MAX / 8];
		bpf_probe_read_user(buf, hi + 8 - cfg.g_goid, (const void *)(g + cfg.g_goid));
		goid = buf[0];
		gopc = buf[(cfg.g_gopc - cfg.g_goid) / 8];
		startpc = buf[(cfg.g_startpc - cfg.g_goid) / 8];
		if (cfg.g_parent_goid)
			parent = buf[(cfg.g_parent_goid - cfg.g_goid) / 8];
	} else {
		goid = rd(g + cfg.g_goid);
		gopc = rd(g + cfg.g_gopc);
		startpc = rd(g + cfg.g_startpc);
		if (cfg.g_parent_goid)
			parent = rd(g + cfg.g_parent_goid);
	}
	if (!cfg.g_parent_goid) {
		/* Go 1.19 has no g.parentGoid: newproc1 runs on g0 via systemstack from the
		 * creating goroutine, which is still g0.m.curg (nil -> 0 for runtime.main). */
		__u64 m = rd(ctx->r14 + cfg.g_m);
		__u64 curg = m ? rd(m + cfg.m_curg) : 0;
		parent = curg ? rd(curg + cfg.g_goid) : 0;
		flags |= GCAP_F_PARENT_CURG;
	}
	struct gcap_ev_create *e = reserve(sizeof(*e), GCAP_GO_CREATE, GCAP_P_NEWPROC1_RET, flags);
	if (!e)
		return 0;
	e->goid = goid;
	e->parent_goid = parent;
	e->gopc = gopc;
	e->startpc = startpc;
	submit(e);
	return 0;
}

/* runtime.execute(gp *g, inheritTime bool): gp in RAX, on g0 of the thread that runs it. */
SEC("uprobe")
int execute(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_EXECUTE);
	/* The g pointer lets userspace read what it knows of goroutines created before the
	 * capture (gopc, startpc, parent) the first time it sees them run. */
	__u64 g = ctx->ax;
	return emit_runtime(GCAP_GO_START, GCAP_P_EXECUTE, rd(g + cfg.g_goid), g, 0);
}

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

/* runtime.gopark(unlockf, lock, reason waitReason, ...): R14 = the parking goroutine,
 * reason in CL. The user stack is walked by frame pointers (Go keeps them). */
SEC("uprobe")
int gopark(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_GOPARK);
	__s32 stack_id = -1;
	if (cfg.block_stacks) {
		long r = entry_stack_id(ctx);
		if (r < 0)
			count_lost(GCAP_LOST_STACK);
		stack_id = r;
	}
	struct gcap_ev_block *e = reserve(sizeof(*e), GCAP_GO_BLOCK, GCAP_P_GOPARK, 0);
	if (!e)
		return 0;
	e->goid = rd(ctx->r14 + cfg.g_goid);
	e->reason = ctx->cx & 0xff;
	e->stack_id = stack_id;
	submit(e);
	return 0;
}

/* runtime.ready(gp *g, traceskip int, next bool): gp in RAX; runs on g0 (goready is
 * systemstack(ready) and is inlined since 1.21), so the waker is g0.m.curg. */
SEC("uprobe")
int ready(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_READY);
	__u32 flags = 0;
	__u64 waker = curg_goid(ctx->r14, &flags);
	struct gcap_ev_unblock *e = reserve(sizeof(*e), GCAP_GO_UNBLOCK, GCAP_P_READY, flags);
	if (!e)
		return 0;
	e->goid = rd(ctx->ax + cfg.g_goid);
	e->waker_goid = waker;
	submit(e);
	return 0;
}

/* One goroutine of an injectglist walk: records its unblock, moves to g.schedlink. Run by
 * bpf_loop (an inline loop of GCAP_GLIST_MAX iterations is verified iteration by iteration
 * and outgrows the verifier's budget). */
static long glist_cb(__u64 i, __u64 *g)
{
	if (!*g)
		return 1;
	/* g.goid and g.schedlink (= goid + 8) in one read */
	__u64 gl[2] = {};
	bpf_probe_read_user(gl, sizeof(gl), (const void *)(*g + cfg.g_goid));
	struct gcap_ev_unblock *e = reserve(sizeof(*e), GCAP_GO_UNBLOCK, GCAP_P_INJECTGLIST,
					    GCAP_F_NETPOLL | GCAP_F_WAKER_UNKNOWN);
	/* a full ring counts each lost unblock: keep walking */
	if (e) {
		e->goid = gl[0];
		e->waker_goid = 0;
		submit(e);
	}
	*g = gl[1];
	return 0;
}

/* runtime.injectglist(glist *gList): netpoll (and GC) make a list of waiting gs runnable
 * without ready(). RAX = &gList{head}; walk g.schedlink. The waker is the netpoller (or
 * the GC), not whichever goroutine happened to poll, so it is reported as 0. */
SEC("uprobe")
int injectglist(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_INJECTGLIST);
	__u64 g = rd(ctx->ax);
	bpf_loop(GCAP_GLIST_MAX, glist_cb, &g, 0);
	if (g)
		count_lost(GCAP_LOST_GLIST);
	return 0;
}

/* runtime.goschedImpl(gp *g, ...): Gosched and (sync/async) preemption; gp in RAX, on g0. */
SEC("uprobe")
int gosched(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_GOSCHED);
	return emit_goid(GCAP_GO_PREEMPT, GCAP_P_GOSCHED, rd(ctx->ax + cfg.g_goid), 0);
}

/* runtime.goyield_m(gp *g): runtime-internal yield (mutex handoff); gp in RAX, on g0. */
SEC("uprobe")
int goyield(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_GOYIELD);
	return emit_goid(GCAP_GO_PREEMPT, GCAP_P_GOYIELD, rd(ctx->ax + cfg.g_goid), 0);
}

/* runtime.reentersyscall (entersyscall's body): R14 = the goroutine. Probed directly
 * because 1.26+ no longer passes through casgstatus here. */
SEC("uprobe")
int reentersyscall(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_REENTERSYSCALL);
	return emit_goid(GCAP_SYSCALL_ENTER, GCAP_P_REENTERSYSCALL, rd(ctx->r14 + cfg.g_goid), 0);
}

SEC("uprobe")
int entersyscallblock(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_ENTERSYSCALLBLOCK);
	return emit_goid(GCAP_SYSCALL_ENTER, GCAP_P_ENTERSYSCALLBLOCK, rd(ctx->r14 + cfg.g_goid), 0);
}

SEC("uprobe")
int exitsyscall(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_EXITSYSCALL);
	return emit_goid(GCAP_SYSCALL_EXIT, GCAP_P_EXITSYSCALL, rd(ctx->r14 + cfg.g_goid), 0);
}

/* runtime.goexit1: R14 = the exiting goroutine (still on its own stack). */
SEC("uprobe")
int goexit1(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_GOEXIT1);
	return emit_goid(GCAP_GO_EXIT, GCAP_P_GOEXIT1, rd(ctx->r14 + cfg.g_goid), 0);
}

/* GC start: runtime.gcBgMarkStartWorkers, which gcStart calls exactly once per cycle after
 * its trigger re-check passed (gcStart's own entry also fires for triggers that bail out),
 * just before the sweep-termination stop-the-world. R14 = the goroutine starting the GC. */
SEC("uprobe")
int gc_start(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_GC_START);
	__u32 flags = 0;
	return emit_runtime(GCAP_GC_START, GCAP_P_GC_START, user_goid(ctx->r14, &flags), 0, flags);
}

/* GC end: runtime.gcMarkTermination entry (marking is over, the world is stopped; sweeping
 * then runs concurrently and is not part of the cycle here). Once per cycle. */
SEC("uprobe")
int gc_mark_termination(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_GC_MARK_TERMINATION);
	__u32 flags = 0;
	return emit_runtime(GCAP_GC_END, GCAP_P_GC_MARK_TERMINATION, user_goid(ctx->r14, &flags),
			    0, flags);
}

/* runtime.stopTheWorldWithSema: reason (stwReason, u8) in AL from 1.21, none in 1.19. */
SEC("uprobe")
int stop_the_world(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_STOP_THE_WORLD);
	__u32 flags = 0;
	__u64 reason = cfg.stw_reason_in_al ? (ctx->ax & 0xff) : 255;
	return emit_runtime(GCAP_STW_START, GCAP_P_STOP_THE_WORLD, user_goid(ctx->r14, &flags),
			    reason, flags);
}

SEC("uprobe")
int start_the_world(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_START_THE_WORLD);
	__u32 flags = 0;
	return emit_runtime(GCAP_STW_END, GCAP_P_START_THE_WORLD, user_goid(ctx->r14, &flags), 0,
			    flags);
}

/*
 * sched_switch as a BTF tracepoint: it hands us both task_structs, so the switched-in
 * thread can be filtered by tgid too (the classic tracepoint only has pids), and it needs
 * no tracefs. Runs on every context switch of the machine: the target lookup comes first.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 prev_tgid = prev->tgid, next_tgid = next->tgid;
	__u32 flags = 0;
	if (bpf_map_lookup_elem(&targets, &prev_tgid))
		flags |= GCAP_F_SWITCH_PREV_TARGET;
	if (bpf_map_lookup_elem(&targets, &next_tgid))
		flags |= GCAP_F_SWITCH_NEXT_TARGET;
	/* Keep clang from folding the two tests into `ptr1 | ptr2`, which the verifier rejects
	 * (bitwise op on a map-value pointer). */
	asm volatile("" : "+r"(flags));
	if (!flags)
		return 0;
	count(GCAP_P_SCHED_SWITCH);
	if (preempt)
		flags |= GCAP_F_SWITCH_PREEMPT;
	struct gcap_ev_switch *e = reserve(sizeof(*e), GCAP_SCHED_SWITCH, GCAP_P_SCHED_SWITCH, flags);
	if (!e)
		return 0;
	e->prev_tid = prev->pid;
	e->prev_tgid = prev_tgid;
	e->next_tid = next->pid;
	e->next_tgid = next_tgid;
	e->prev_state = prev_state;
	submit(e);
	return 0;
}

/* Process exit: the main thread (pid == tgid) of a target leaves. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;
	if (p->pid != p->tgid || !bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	count(GCAP_P_PROCESS_EXIT);
	struct gcap_ev_proc_exit *e = reserve(sizeof(*e), GCAP_PROC_EXIT, GCAP_P_PROCESS_EXIT, 0);
	if (!e)
		return 0;
	e->exit_code = p->exit_code;
	e->_pad = 0;
	submit(e);
	return 0;
}

/* ------------------------------------------------------------------------------------------
 * Spans: net/http server and client, database/sql; and CPU samples.
 *
 * Entry probes sit after the stack check like the runtime ones (one hit per call, no
 * morestack re-entry). Client and SQL spans end on every RET of the same function; server
 * spans end at emulated sites after the handler returned (http_serve_done,
 * http2_handler_done), or on the RETs of serverHandler.ServeHTTP when a binary has no such
 * site (a RET is single-stepped by the kernel: ~13 us a hit). Records carry the
 * goid (R14), never a thread id, as key: userspace pairs starts and ends per (pid, goid),
 * so a request that moves to another OS thread mid-way still pairs. Strings are copied
 * bounded into the record with their full Go length. Nothing here writes user memory.
 * ---------------------------------------------------------------------------------------- */

/* Bounded copy of a Go string {ptr, len} into a record field of `size` bytes; stores the
 * full length in *len_out. */
#define COPY_GOSTR(dst, size, ptr, len, len_out)                                   \
	do {                                                                       \
		__u64 _n = (len);                                                  \
		*(len_out) = (__u32)(_n > 0xffffffffULL ? 0xffffffffULL : _n);     \
		if (_n > (size))                                                   \
			_n = (size);                                               \
		if (_n > 0 && (ptr))                                               \
			bpf_probe_read_user((dst), _n, (const void *)(ptr));       \
	} while (0)

/* Same, in a sleepable program: bpf_copy_from_user can fault the page in (a string literal
 * in the binary's rodata that the process has not touched yet is not mapped, and
 * bpf_probe_read_user fails on it). */
#define COPY_GOSTR_S(dst, size, ptr, len, len_out)                                 \
	do {                                                                       \
		__u64 _n = (len);                                                  \
		*(len_out) = (__u32)(_n > 0xffffffffULL ? 0xffffffffULL : _n);     \
		if (_n > (size))                                                   \
			_n = (size);                                               \
		if (_n > 0 && (ptr))                                               \
			bpf_copy_from_user((dst), _n, (const void *)(ptr));        \
	} while (0)

/* Canonical "Traceparent", little-endian: "Tracepar" and "ent". */
#define TP_KEY_LO 0x7261706563617254ULL
#define TP_KEY_HI 0x746e65U

/* Is the Go string header at `kaddr` the key "Traceparent"? */
static __always_inline bool key_is_traceparent(__u64 kaddr)
{
	__u64 kh[2] = {};
	if (bpf_probe_read_user(kh, sizeof(kh), (const void *)kaddr) || kh[1] != 11 || !kh[0])
		return false;
	__u64 k[2] = {};
	if (bpf_probe_read_user(k, 11, (const void *)kh[0]))
		return false;
	return k[0] == TP_KEY_LO && (k[1] & 0xffffff) == TP_KEY_HI;
}

/* Most buckets/groups one header-map scan visits (requests carry a few dozen headers at
 * most; a map with more is scanned partially and its traceparent may be missed). */
#define HDR_VISITS 16
#define BUCKET_SIZE 336  /* bucket of map[string][]string: tophash[8], keys, elems, overflow */
#define GROUP_SIZE 328   /* Swiss group of map[string][]string: ctrl u64 + 8 slots of 40 */

/*
 * Header-map scan state, shared by the bpf_loop callbacks below (bpf_loop callbacks are
 * verified once, where an unrolled 16 x 8 slot scan blows the verifier's 1M-instruction
 * budget).
 *
 * Bucket maps (Go <= 1.23, and GOEXPERIMENT=noswissmap; runtime/map.go): hmap.B @9,
 * buckets @16, oldbuckets @24; a bucket is tophash[8] @0, keys [8]string @8, elems
 * [8][]string @136, overflow @328. Old buckets are scanned too while the map grows (an
 * entry lives in exactly one of them; evacuated and empty slots have tophash < 5).
 *
 * Swiss maps (Go >= 1.24; internal/runtime/maps): Map.dirPtr @16, dirLen @24. dirLen == 0:
 * dirPtr is one group; else a directory of *table (entries repeat), each with groups.data
 * @16 and lengthMask @24. A group is ctrl u64 @0 (byte i < 0x80: slot i full) and 8 slots
 * of 40 bytes from @8 (key string @0, elem []string @16).
 */
struct hdr_scan {
	__u64 cur;        /* bucket / group being visited; 0 = done */
	__u64 ctrl;       /* its tophash[8] or ctrl word */
	__u64 found;      /* address of the []string value, once found */
	/* bucket maps */
	__u64 buckets, old;
	__u32 nb, nold, idx, _pad;
	/* swiss maps */
	__u64 dir, prev_table, groups, ngroups, gi;
	__s64 dir_len, t;
};

static long slot_cb(__u64 j, struct hdr_scan *st)
{
	if (j >= 8)
		return 1;
	__u8 c = (st->ctrl >> (8 * j)) & 0xff;
	__u64 key, val;
	if (cfg.map_swiss) {
		if (c & 0x80)
			return 0;
		key = st->cur + 8 + j * 40;
		val = key + 16;
	} else {
		if (c < 5)
			return 0;
		key = st->cur + 8 + j * 16;
		val = st->cur + 136 + j * 24;
	}
	if (key_is_traceparent(key)) {
		st->found = val;
		return 1;
	}
	return 0;
}

/* Moves a Swiss scan to the first group of the directory's next distinct table. */
static __always_inline void swiss_next_table(struct hdr_scan *st)
{
	st->cur = 0;
	for (int k = 0; k < 4; k++) {
		if (st->t >= st->dir_len || st->t < 0 || st->t > 1024)
			return;
		__u64 table = rd(st->dir + 8 * st->t);
		st->t++;
		if (table && table != st->prev_table) {
			st->prev_table = table;
			st->groups = rd(table + 16);
			st->ngroups = rd(table + 24) + 1;
			st->gi = 0;
			st->cur = st->groups;
			return;
		}
	}
}

static long visit_cb(__u64 i, struct hdr_scan *st)
{
	if (!st->cur)
		return 1;
	st->ctrl = rd(st->cur);
	bpf_loop(8, slot_cb, st, 0);
	if (st->found)
		return 1;
	if (cfg.map_swiss) {
		if (st->dir_len <= 0) {
			st->cur = 0;
		} else if (++st->gi < st->ngroups) {
			st->cur = st->groups + st->gi * GROUP_SIZE;
		} else {
			swiss_next_table(st);
		}
		return 0;
	}
	__u64 ovf = rd(st->cur + 328);
	if (ovf) {
		st->cur = ovf;
		return 0;
	}
	st->idx++;
	if (st->idx < st->nb)
		st->cur = st->buckets + (__u64)st->idx * BUCKET_SIZE;
	else if (st->idx < st->nb + st->nold)
		st->cur = st->old + (__u64)(st->idx - st->nb) * BUCKET_SIZE;
	else
		st->cur = 0;
	return 0;
}

/* Address of the []string value of "Traceparent" in the header map `m`, or 0. */
static __always_inline __u64 header_find(__u64 m)
{
	struct hdr_scan st = {};
	if (cfg.map_swiss) {
		st.dir = rd(m + 16);
		st.dir_len = (__s64)rd(m + 24);
		if (st.dir_len > 0)
			swiss_next_table(&st);
		else
			st.cur = st.dir;
	} else {
		__u8 B = 0;
		bpf_probe_read_user(&B, 1, (const void *)(m + 9));
		st.buckets = rd(m + 16);
		st.old = rd(m + 24);
		st.nb = B > 4 ? 16 : (1u << B);
		st.nold = st.old ? (st.nb > 1 ? st.nb / 2 : 1) : 0;
		st.cur = st.buckets;
	}
	bpf_loop(HDR_VISITS, visit_cb, &st, 0);
	return st.found;
}

/* Copies the first value of the request's "Traceparent" header, if any. */
static __always_inline void read_traceparent(__u64 header_map, struct gcap_ev_span_start *e)
{
	e->tp_len = 0;
	if (!header_map)
		return;
	__u64 val = header_find(header_map);
	if (!val)
		return;
	__u64 sl[2] = {}; /* []string: ptr, len */
	if (bpf_probe_read_user(sl, sizeof(sl), (const void *)val) || !sl[0] || !sl[1])
		return;
	__u64 s[2] = {}; /* value[0]: ptr, len */
	if (bpf_probe_read_user(s, sizeof(s), (const void *)sl[0]))
		return;
	COPY_GOSTR(e->traceparent, GCAP_TP_MAX, s[0], s[1], &e->tp_len);
}

/* Reserves a span-start record and fills what every kind has. */
static __always_inline struct gcap_ev_span_start *span_start(struct pt_regs *ctx, __u8 probe,
							     __u8 kind)
{
	struct gcap_ev_span_start *e = reserve(sizeof(*e), GCAP_SPAN_START, probe, 0);
	if (!e)
		return 0;
	e->goid = rd(ctx->r14 + cfg.g_goid);
	e->content_length = -1;
	e->method_len = 0;
	e->host_len = 0;
	e->target_len = 0;
	e->query_len = 0;
	e->tp_len = 0;
	e->span_kind = kind;
	return e;
}

/* Method, URL (path, host for clients, raw query with --keep-query), content length and
 * traceparent of an *http.Request. `sleepable`: copy the strings with bpf_copy_from_user
 * (client requests: the method and URL are often literals of the program). */
#define FILL_REQUEST(e, req, WANT_HOST, COPY)                                                   \
	do {                                                                               \
		__u64 s[2] = {};                                                           \
		bpf_probe_read_user(s, sizeof(s), (const void *)((req) + cfg.req_method)); \
		COPY((e)->method, GCAP_METHOD_MAX, s[0], s[1], &(e)->method_len);          \
		(e)->content_length = (__s64)rd((req) + cfg.req_content_length);           \
		__u64 url = rd((req) + cfg.req_url);                                       \
		if (url) {                                                                 \
			bpf_probe_read_user(s, sizeof(s), (const void *)(url + cfg.url_path)); \
			COPY((e)->target, GCAP_TARGET_MAX, s[0], s[1], &(e)->target_len);  \
			if (WANT_HOST) {                                                   \
				bpf_probe_read_user(s, sizeof(s),                          \
						    (const void *)(url + cfg.url_host));   \
				COPY((e)->host, GCAP_HOST_MAX, s[0], s[1], &(e)->host_len); \
			}                                                                  \
			if (cfg.keep_query) {                                              \
				bpf_probe_read_user(s, sizeof(s),                          \
						    (const void *)(url + cfg.url_raw_query)); \
				COPY((e)->query, GCAP_QUERY_MAX, s[0], s[1], &(e)->query_len); \
			}                                                                  \
		}                                                                          \
		read_traceparent(rd((req) + cfg.req_header), (e));                         \
	} while (0)

static __always_inline int span_end(struct pt_regs *ctx, __u8 kind, __u8 probe, __u8 span_kind,
				    __u64 status, __u32 error)
{
	struct gcap_ev_span_end *e = reserve(sizeof(*e), kind, probe, 0);
	if (!e)
		return 0;
	e->goid = rd(ctx->r14 + cfg.g_goid);
	e->status = status;
	e->error = error;
	e->span_kind = span_kind;
	e->_pad[0] = e->_pad[1] = e->_pad[2] = 0;
	submit(e);
	return 0;
}

/* net/http.serverHandler.ServeHTTP(sh, rw ResponseWriter, req *Request): sh RAX, rw
 * RBX:RCX, req RDI (Go 1.19-1.27). HTTP/1 and HTTP/2 requests both come through here, on
 * the goroutine that runs the handler. */
SEC("uprobe")
int http_serve(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_HTTP_SERVE);
	struct gcap_ev_span_start *e = span_start(ctx, GCAP_P_HTTP_SERVE, GCAP_SPAN_HTTP_SERVER);
	if (!e)
		return 0;
	FILL_REQUEST(e, ctx->di, false, COPY_GOSTR);
	submit(e);
	return 0;
}

/* Fallback end of server spans: every RET of serverHandler.ServeHTTP (only attached when
 * the binary lacks the two sites below). */
SEC("uprobe")
int http_serve_ret(struct pt_regs *ctx)
{
	count(GCAP_P_HTTP_SERVE_RET);
	return span_end(ctx, GCAP_SPAN_END, GCAP_P_HTTP_SERVE_RET, GCAP_SPAN_HTTP_SERVER, 0, 0);
}

/* HTTP/1 end: in (*conn).serve, `serverHandler{c.server}.ServeHTTP(w, w.req)` is followed
 * by `inFlightResponse = nil; w.cancelCtx(); if c.hijacked() {...}; w.finishRequest()` on
 * the same goroutine (Go 1.19-1.27). The probe sits on the `CALL (*conn).hijacked` (a CALL
 * is emulated), so hijacked connections end here too, as when ServeHTTP returns. A handler
 * panic unwinds past it: userspace ends such a span at the goroutine's exit, in error (at
 * levels that probe goroutine exits). */
SEC("uprobe")
int http_serve_done(struct pt_regs *ctx)
{
	count(GCAP_P_HTTP_SERVE_DONE);
	return span_end(ctx, GCAP_SPAN_END, GCAP_P_HTTP_SERVE_DONE, GCAP_SPAN_HTTP_SERVER, 0, 0);
}

/* runtime.g._panic: after stack (16 bytes), stackguard0 and stackguard1, whose offsets the
 * compiler's prologues rely on; unchanged from Go 1.5 to 1.27. */
#define G_PANIC_OFFSET 32

/*
 * HTTP/2 end (net/http's bundled server, 1.27's net/http/internal/http2, x/net/http2): the
 * handler goroutine runs runHandler, whose deferred closure calls rw.handlerDone() once the
 * handler returned normally (a panic takes another branch). Usually the probe sits after
 * handlerDone's prologue (cookie bit JBE on 1.19/1.20). When handlerDone is inlined into
 * the closure (e.g. PGO builds) it sits after the closure's prologue instead (cookie bit
 * PANIC_CHECK): the closure also runs while a panic (or runtime.Goexit) unwinds the
 * handler, and then g._panic is set: the span ends in error.
 */
SEC("uprobe")
int http2_handler_done(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_HTTP2_HANDLER_DONE);
	__u32 error = 0;
	if (bpf_get_attach_cookie(ctx) & GCAP_COOKIE_PANIC_CHECK)
		error = rd(ctx->r14 + G_PANIC_OFFSET) != 0;
	return span_end(ctx, GCAP_SPAN_END, GCAP_P_HTTP2_HANDLER_DONE, GCAP_SPAN_HTTP_SERVER, 0,
			error);
}

/* (*response).WriteHeader(code int) (HTTP/1) and HTTP/2's (*responseWriterState).writeHeader
 * (code int) (every HTTP/2 status goes through it; the exported WriteHeader wrappers are
 * inlined in 1.27): receiver RAX, code RBX, on the handler goroutine. Userspace keeps the
 * first final code of the goroutine's open server span. */
SEC("uprobe")
int http_write_header(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_HTTP_WRITE_HEADER);
	return span_end(ctx, GCAP_HTTP_STATUS, GCAP_P_HTTP_WRITE_HEADER, GCAP_SPAN_HTTP_SERVER,
			ctx->bx, 0);
}

SEC("uprobe")
int http2_write_header(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_HTTP2_WRITE_HEADER);
	return span_end(ctx, GCAP_HTTP_STATUS, GCAP_P_HTTP2_WRITE_HEADER, GCAP_SPAN_HTTP_SERVER,
			ctx->bx, 0);
}

/* net/http.(*Transport).roundTrip(req *Request) (*Response, error): t RAX, req RBX.
 * Sleepable: the request's strings may be literals on not-yet-touched pages. */
SEC("uprobe.s")
int http_round_trip(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_HTTP_ROUND_TRIP);
	struct gcap_ev_span_start *e =
		span_start(ctx, GCAP_P_HTTP_ROUND_TRIP, GCAP_SPAN_HTTP_CLIENT);
	if (!e)
		return 0;
	FILL_REQUEST(e, ctx->bx, true, COPY_GOSTR_S);
	submit(e);
	return 0;
}

/* At each RET: resp RAX, err RBX:RCX (itab, data). */
SEC("uprobe")
int http_round_trip_ret(struct pt_regs *ctx)
{
	count(GCAP_P_HTTP_ROUND_TRIP_RET);
	__u64 resp = ctx->ax;
	__u64 status = resp ? rd(resp + cfg.resp_status_code) : 0;
	return span_end(ctx, GCAP_SPAN_END, GCAP_P_HTTP_ROUND_TRIP_RET, GCAP_SPAN_HTTP_CLIENT,
			status, ctx->bx != 0);
}

static __always_inline int sql_start(struct pt_regs *ctx, __u8 probe, __u64 ptr, __u64 len)
{
	struct gcap_ev_span_start *e = span_start(ctx, probe, GCAP_SPAN_SQL);
	if (!e)
		return 0;
	COPY_GOSTR_S(e->target, GCAP_TARGET_MAX, ptr, len, &e->target_len);
	submit(e);
	return 0;
}

/* database/sql.(*DB).queryDC(ctx, txctx context.Context, dc *driverConn, releaseConn
 * func(error), query string, args []any) (*Rows, error): db RAX, ctx RBX:RCX, txctx
 * RDI:RSI, dc R8, releaseConn R9, query R10:R11 (args on the stack). Every DB, Tx and Conn
 * query goes through it (Go 1.19-1.27). Sleepable: query texts are usually literals, on
 * rodata pages the process may not have touched yet. */
SEC("uprobe.s")
int sql_query(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_SQL_QUERY);
	return sql_start(ctx, GCAP_P_SQL_QUERY, ctx->r10, ctx->r11);
}

/* Returns (*Rows RAX, error RBX:RCX). */
SEC("uprobe")
int sql_query_ret(struct pt_regs *ctx)
{
	count(GCAP_P_SQL_QUERY_RET);
	return span_end(ctx, GCAP_SPAN_END, GCAP_P_SQL_QUERY_RET, GCAP_SPAN_SQL, 0, ctx->bx != 0);
}

/* database/sql.(*DB).execDC(ctx, dc, release func(error), query string, args []any)
 * (Result, error): db RAX, ctx RBX:RCX, dc RDI, release RSI, query R8:R9. */
SEC("uprobe.s")
int sql_exec(struct pt_regs *ctx)
{
	if (restarting(ctx))
		return 0;
	count(GCAP_P_SQL_EXEC);
	return sql_start(ctx, GCAP_P_SQL_EXEC, ctx->r8, ctx->r9);
}

/* Returns (Result RAX:RBX, error RCX:RDI). */
SEC("uprobe")
int sql_exec_ret(struct pt_regs *ctx)
{
	count(GCAP_P_SQL_EXEC_RET);
	return span_end(ctx, GCAP_SPAN_END, GCAP_P_SQL_EXEC_RET, GCAP_SPAN_SQL, 0, ctx->cx != 0);
}

/*
 * CPU samples: a software cpu-clock perf event per CPU (whole system, filtered by tgid).
 * The goroutine is read through the thread's TLS, valid in user and kernel mode alike:
 * g = *(fsbase - 8) (linux/amd64 Go), then g.m.curg; the M must name this very thread
 * (m.procid == tid), else it is not a Go-managed thread (cgo, or a stale read): goid 0.
 */
SEC("perf_event")
int cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	if (!bpf_map_lookup_elem(&targets, &tgid))
		return 0;
	count(GCAP_P_CPU_SAMPLE);
	struct task_struct *task = (void *)bpf_get_current_task();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	__u64 goid = 0;
	__u64 g = fsbase ? rd(fsbase - 8) : 0;
	if (g) {
		__u64 m = rd(g + cfg.g_m);
		if (m && rd(m + cfg.m_procid) == tid) {
			__u64 curg = rd(m + cfg.m_curg);
			goid = curg ? rd(curg + cfg.g_goid) : 0;
		}
	}
	/* The user stack, wherever the thread was (the kernel walks it from the task's user
	 * registers; the remainder of the buffer is zero-filled), interned like block stacks.
	 * The sample may interrupt a uprobe program that holds a scratch slot: take the next. */
	__u64 *nest;
	__u64 *buf = get_stack_buf(&nest);
	long r = -GCAP_EBUSY;
	if (buf) {
		r = bpf_get_stack(ctx, buf, cfg.stack_depth * sizeof(__u64), BPF_F_USER_STACK);
		if (r >= 0)
			r = intern_stack(buf);
	}
	put_stack_buf(nest);
	if (r < 0)
		count_lost(GCAP_LOST_STACK);
	struct gcap_ev_sample *e = reserve(sizeof(*e), GCAP_CPU_SAMPLE, GCAP_P_CPU_SAMPLE, 0);
	if (!e)
		return 0;
	e->goid = goid;
	e->stack_id = r;
	e->_pad = 0;
	submit(e);
	return 0;
}

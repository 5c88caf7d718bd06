/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): uprobes on the Go runtime that follow each
 * goroutine (create, start, block, unblock, preempt, syscalls, exit) and the GC and
 * stop-the-world phases.
 */

/* Upper bound of the injectglist walk: one netpoll batch is up to 128 epoll events, each
 * readying up to 2 goroutines; GC sweep-waiter lists can be longer (counted as lost). */
#define GCAP_GLIST_MAX 512

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

/*
 * The small runtime probes: one record per call, of the running or the argument goroutine.
 * GOID_PROBE records a gcap_ev_goid of the g in register `greg` (R14 = the goroutine that
 * runs the function, RAX = its first argument). RUNTIME_PROBE records a gcap_ev_runtime
 * with the goroutine that asked for it (see user_goid) and `arg`.
 */
#define GOID_PROBE(name, probe, kind, greg)                                                \
	SEC("uprobe")                                                                      \
	int name(struct pt_regs *ctx)                                                      \
	{                                                                                  \
		if (restarting(ctx))                                                       \
			return 0;                                                          \
		count(probe);                                                              \
		return emit_goid(kind, probe, rd(ctx->greg + cfg.g_goid), 0);             \
	}

#define RUNTIME_PROBE(name, probe, kind, arg)                                              \
	SEC("uprobe")                                                                      \
	int name(struct pt_regs *ctx)                                                      \
	{                                                                                  \
		if (restarting(ctx))                                                       \
			return 0;                                                          \
		count(probe);                                                              \
		__u32 flags = 0;                                                           \
		__u64 a = (arg);                                                           \
		__u64 goid = user_goid(ctx->r14, &flags);                                  \
		return emit_runtime(kind, probe, goid, a, flags);                          \
	}

/* runtime.goschedImpl(gp *g, ...): Gosched and (sync/async) preemption; gp in RAX, on g0. */
GOID_PROBE(gosched, GCAP_P_GOSCHED, GCAP_GO_PREEMPT, ax)

/* runtime.goyield_m(gp *g): runtime-internal yield (mutex handoff); gp in RAX, on g0. */
GOID_PROBE(goyield, GCAP_P_GOYIELD, GCAP_GO_PREEMPT, ax)

/* runtime.reentersyscall (entersyscall's body): R14 = the goroutine. Probed directly
 * because 1.26+ no longer passes through casgstatus here. */
GOID_PROBE(reentersyscall, GCAP_P_REENTERSYSCALL, GCAP_SYSCALL_ENTER, r14)
GOID_PROBE(entersyscallblock, GCAP_P_ENTERSYSCALLBLOCK, GCAP_SYSCALL_ENTER, r14)
GOID_PROBE(exitsyscall, GCAP_P_EXITSYSCALL, GCAP_SYSCALL_EXIT, r14)

/* runtime.goexit1: R14 = the exiting goroutine (still on its own stack). */
GOID_PROBE(goexit1, GCAP_P_GOEXIT1, GCAP_GO_EXIT, r14)

/* GC start: runtime.gcBgMarkStartWorkers, which gcStart calls exactly once per cycle after
 * its trigger re-check passed (gcStart's own entry also fires for triggers that bail out),
 * just before the sweep-termination stop-the-world. R14 = the goroutine starting the GC. */
RUNTIME_PROBE(gc_start, GCAP_P_GC_START, GCAP_GC_START, 0)

/* GC end: runtime.gcMarkTermination entry (marking is over, the world is stopped; sweeping
 * then runs concurrently and is not part of the cycle here). Once per cycle. */
RUNTIME_PROBE(gc_mark_termination, GCAP_P_GC_MARK_TERMINATION, GCAP_GC_END, 0)

/* runtime.stopTheWorldWithSema: reason (stwReason, u8) in AL from 1.21, none in 1.19. */
RUNTIME_PROBE(stop_the_world, GCAP_P_STOP_THE_WORLD, GCAP_STW_START,
	      cfg.stw_reason_in_al ? (ctx->ax & 0xff) : 255)

RUNTIME_PROBE(start_the_world, GCAP_P_START_THE_WORLD, GCAP_STW_END, 0)

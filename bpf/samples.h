/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): CPU samples, from a software cpu-clock
 * perf event per CPU (whole system, filtered by tgid). The goroutine is read through the
 * thread's TLS, valid in user and kernel mode alike: g = *(fsbase - 8) (linux/amd64 Go),
 * then g.m.curg; the M must name this very thread (m.procid == tid), else it is not a
 * Go-managed thread (cgo, or a stale read): goid 0.
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

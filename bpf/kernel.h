/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): the `targets` filter and the kernel
 * tracepoints, which see every thread of the machine.
 */

/* tgids being captured (filled by userspace at attach); filters the programs that see the
 * whole machine: these tracepoints and CPU samples (samples.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

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

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the BPF programs and userspace share: the records gcap.bpf.c writes into the
 * `events` ring buffer, the ids that index its per-CPU counters, the attach cookie bits and
 * the configuration. Userspace does not copy these by hand: every type listed in struct
 * gcap_abi (below) reaches the object's BTF, from which the libbpf-rs skeleton generates its
 * Rust definition (capture/src/probes/records.rs decodes the records with them).
 *
 * Every record starts with the 24-byte gcap_hdr; `kind` says which layout follows. All
 * records are fixed-size and a multiple of 8 bytes (the ring buffer adds an 8-byte header
 * per record, so a 32-byte record costs 40 bytes of ring space).
 */
#ifndef GCAP_H
#define GCAP_H

/* Event kinds (gcap_hdr.kind). */
enum gcap_kind {
	GCAP_GO_CREATE = 1,      /* gcap_ev_create */
	GCAP_GO_START = 2,       /* gcap_ev_runtime: goroutine (arg = its g pointer) starts running on thread hdr.tid */
	GCAP_GO_BLOCK = 3,       /* gcap_ev_block */
	GCAP_GO_UNBLOCK = 4,     /* gcap_ev_unblock */
	GCAP_GO_PREEMPT = 5,     /* gcap_ev_goid: running -> runnable (preempted or yielded) */
	GCAP_SYSCALL_ENTER = 6,  /* gcap_ev_goid */
	GCAP_SYSCALL_EXIT = 7,   /* gcap_ev_goid */
	GCAP_GO_EXIT = 8,        /* gcap_ev_goid */
	GCAP_GC_START = 9,       /* gcap_ev_runtime: arg = 0 */
	GCAP_GC_END = 10,        /* gcap_ev_runtime: arg = 0 (mark termination begins) */
	GCAP_STW_START = 11,     /* gcap_ev_runtime: arg = stwReason (Go >= 1.21), else 255 */
	GCAP_STW_END = 12,       /* gcap_ev_runtime: arg = 0 */
	GCAP_SCHED_SWITCH = 13,  /* gcap_ev_switch */
	GCAP_PROC_EXIT = 14,     /* gcap_ev_proc_exit */
	GCAP_SPAN_START = 15,    /* gcap_ev_span_start */
	GCAP_SPAN_END = 16,      /* gcap_ev_span_end */
	GCAP_HTTP_STATUS = 17,   /* gcap_ev_span_end: status = WriteHeader's code */
	GCAP_CPU_SAMPLE = 18,    /* gcap_ev_sample */
};

/* Probe ids: index of the per-CPU `hits` array and gcap_hdr.probe. One per BPF program. */
enum gcap_probe {
	GCAP_P_NEWPROC1_RET = 0,
	GCAP_P_EXECUTE = 1,
	GCAP_P_GOPARK = 2,
	GCAP_P_READY = 3,
	GCAP_P_INJECTGLIST = 4,
	GCAP_P_GOSCHED = 5,          /* runtime.goschedImpl (Gosched and preemption) */
	GCAP_P_GOYIELD = 6,          /* runtime.goyield_m */
	GCAP_P_REENTERSYSCALL = 7,
	GCAP_P_ENTERSYSCALLBLOCK = 8,
	GCAP_P_EXITSYSCALL = 9,
	GCAP_P_GOEXIT1 = 10,
	GCAP_P_GC_START = 11,
	GCAP_P_GC_MARK_TERMINATION = 12,
	GCAP_P_STOP_THE_WORLD = 13,
	GCAP_P_START_THE_WORLD = 14,
	GCAP_P_SCHED_SWITCH = 15,
	GCAP_P_PROCESS_EXIT = 16,
	/* Spans (bpf/spans.h) and CPU samples (bpf/samples.h). */
	GCAP_P_HTTP_SERVE = 17,         /* net/http.serverHandler.ServeHTTP, body */
	GCAP_P_HTTP_SERVE_RET = 18,     /* ... every RET (fallback end: single-stepped, ~13 us) */
	GCAP_P_HTTP_WRITE_HEADER = 19,  /* net/http.(*response).WriteHeader */
	GCAP_P_HTTP2_WRITE_HEADER = 20, /* net/http.(*http2responseWriterState).writeHeader (1.27: internal/http2) */
	GCAP_P_HTTP_ROUND_TRIP = 21,    /* net/http.(*Transport).roundTrip, body */
	GCAP_P_HTTP_ROUND_TRIP_RET = 22,
	GCAP_P_SQL_QUERY = 23,          /* database/sql.(*DB).queryDC, body */
	GCAP_P_SQL_QUERY_RET = 24,
	GCAP_P_SQL_EXEC = 25,           /* database/sql.(*DB).execDC, body */
	GCAP_P_SQL_EXEC_RET = 26,
	GCAP_P_CPU_SAMPLE = 27,         /* perf_event software cpu-clock */
	GCAP_P_HTTP_SERVE_DONE = 28,    /* HTTP/1 end: CALL (*conn).hijacked after ServeHTTP in (*conn).serve */
	GCAP_P_HTTP2_HANDLER_DONE = 29, /* HTTP/2 end: (*http2responseWriter).handlerDone (1.27: internal/http2) */
	GCAP_P_COUNT = 30,
};

/* Indexes of the per-CPU `lost` array. */
enum gcap_lost {
	GCAP_LOST_RINGBUF = 0,   /* bpf_ringbuf_reserve failed: the event is gone */
	GCAP_LOST_STACK = 1,     /* stack not stored (hash taken by another stack, map full): the event is kept, stack_id < 0 */
	GCAP_LOST_GLIST = 2,     /* injectglist list longer than the walk bound: unblocks lost */
	GCAP_LOST_COUNT = 3,
};

/* gcap_hdr.flags bits. */
enum gcap_flag {
	GCAP_F_WAKER_CURG = 1u << 0,          /* waker read from g0.m.curg (wakeup ran on the system stack) */
	GCAP_F_WAKER_UNKNOWN = 1u << 1,       /* woken from g0 with no user goroutine on the M: waker = 0 */
	GCAP_F_NETPOLL = 1u << 2,             /* unblock from injectglist (netpoll, GC, ...) */
	GCAP_F_PARENT_CURG = 1u << 3,         /* create: parent read from g0.m.curg (Go 1.19: no g.parentGoid) */
	GCAP_F_SWITCH_PREEMPT = 1u << 4,      /* sched_switch: prev was preempted (still runnable) */
	GCAP_F_SWITCH_PREV_TARGET = 1u << 5,  /* sched_switch: prev thread belongs to a target */
	GCAP_F_SWITCH_NEXT_TARGET = 1u << 6,  /* sched_switch: next thread belongs to a target */
	GCAP_F_LIST_TRUNCATED = 1u << 7,      /* injectglist: the list was longer than the walk bound */
};

/* Attach cookie bits: how a uprobe site reads (ProbeSite::cookie in
 * capture/src/probes/plan.rs). */
enum gcap_cookie {
	GCAP_COOKIE_JBE = 1,         /* on the prologue's stack-check JBE (see restarting()) */
	GCAP_COOKIE_NEWG_RBX = 2,    /* create: the new g is in RBX, not RAX */
	GCAP_COOKIE_PANIC_CHECK = 4, /* HTTP/2 end: read g._panic (see http2_handler_done) */
};

struct gcap_hdr {
	__u64 ts_ns;  /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
	__u32 tgid;   /* process id */
	__u32 tid;    /* OS thread id */
	__u8 kind;    /* enum gcap_kind */
	__u8 probe;   /* enum gcap_probe that emitted it */
	__u16 cpu;    /* bpf_get_smp_processor_id */
	__u32 flags;  /* enum gcap_flag bits */
};

struct gcap_ev_create {       /* 56 bytes */
	struct gcap_hdr hdr;
	__u64 goid;           /* new goroutine */
	__u64 parent_goid;    /* creator; 0 for the main goroutine and for runtime-made ones */
	__u64 gopc;           /* PC of the go statement (g.gopc) */
	__u64 startpc;        /* PC of the goroutine's function (g.startpc) */
};

struct gcap_ev_goid {         /* 32 bytes: START, PREEMPT, SYSCALL_ENTER/EXIT, EXIT */
	struct gcap_hdr hdr;
	__u64 goid;
};

struct gcap_ev_block {        /* 40 bytes */
	struct gcap_hdr hdr;
	__u64 goid;
	__u32 reason;         /* Go waitReason (version-specific numbering) */
	__s32 stack_id;       /* key in the `stacks` map, or < 0 (-errno / not captured) */
};

struct gcap_ev_unblock {      /* 40 bytes */
	struct gcap_hdr hdr;
	__u64 goid;           /* goroutine made runnable */
	__u64 waker_goid;     /* goroutine that did it; 0 = unknown / the scheduler or netpoller */
};

struct gcap_ev_runtime {      /* 40 bytes: GC_START/END, STW_START/END */
	struct gcap_hdr hdr;
	__u64 goid;           /* goroutine that asked for it (0 = none, e.g. a system goroutine on g0) */
	__u64 arg;
};

struct gcap_ev_switch {       /* 48 bytes */
	struct gcap_hdr hdr;  /* hdr.tid/tgid: prev (the thread switched out) */
	__u32 prev_tid;
	__u32 prev_tgid;
	__u32 next_tid;
	__u32 next_tgid;
	__u64 prev_state;     /* task state of prev (0 = runnable / preempted) */
};

struct gcap_ev_proc_exit {    /* 32 bytes */
	struct gcap_hdr hdr;
	__s32 exit_code;      /* task->exit_code of the main thread (wait status encoding) */
	__u32 _pad;
};

/* Span kinds (gcap_ev_span_start.span_kind; same numbers as the format's SpanKind). */
enum gcap_span_kind {
	GCAP_SPAN_HTTP_SERVER = 1,
	GCAP_SPAN_HTTP_CLIENT = 2,
	GCAP_SPAN_SQL = 3,
};

#define GCAP_METHOD_MAX 16
#define GCAP_TP_MAX 64     /* a W3C version-00 traceparent is 55 bytes */
#define GCAP_HOST_MAX 64
#define GCAP_QUERY_MAX 128 /* URL.RawQuery, only copied with --keep-query */
#define GCAP_TARGET_MAX 256 /* URL.Path or SQL text */

/*
 * A span starts (the goroutine hdr.tid runs goid). Strings are copied bounded; the *_len
 * fields hold the full Go lengths, so len > copied means truncated. 592 bytes.
 */
struct gcap_ev_span_start {
	struct gcap_hdr hdr;
	__u64 goid;
	__s64 content_length;  /* Request.ContentLength (-1 unknown); -1 for SQL */
	__u32 method_len;      /* Request.Method */
	__u32 host_len;        /* URL.Host (client spans) */
	__u32 target_len;      /* URL.Path, or the SQL text */
	__u32 query_len;       /* URL.RawQuery (0 unless cfg.keep_query) */
	__u32 tp_len;          /* length of the Traceparent header value; 0 = none */
	__u8 span_kind;        /* enum gcap_span_kind */
	__u8 _pad[3];
	char method[GCAP_METHOD_MAX];
	char traceparent[GCAP_TP_MAX];
	char host[GCAP_HOST_MAX];
	char query[GCAP_QUERY_MAX];
	char target[GCAP_TARGET_MAX];
};

struct gcap_ev_span_end {     /* 48 bytes: SPAN_END and HTTP_STATUS */
	struct gcap_hdr hdr;
	__u64 goid;
	__u64 status;          /* client: Response.StatusCode (0 = no response); HTTP_STATUS: code */
	__u32 error;           /* 1 = the function returned a non-nil error */
	__u8 span_kind;
	__u8 _pad[3];
};

struct gcap_ev_sample {       /* 40 bytes */
	struct gcap_hdr hdr;
	__u64 goid;            /* m.curg of the sampled thread (0 = none / not a Go thread) */
	__s32 stack_id;        /* user stack in `stacks`, or < 0 */
	__u32 _pad;
};

/*
 * Per-skeleton configuration (the .rodata `cfg` const). Offsets are bytes into runtime.g /
 * runtime.m of the target's Go version.
 */
struct gcap_config {
	__u64 g_goid;
	__u64 g_m;
	__u64 g_parent_goid;  /* 0 = field absent (Go 1.19): use g0.m.curg at newproc1 return */
	__u64 g_gopc;
	__u64 g_startpc;
	__u64 g_schedlink;
	__u64 m_curg;
	__u32 go_minor;       /* 19, 21, ... 27 */
	__u32 block_stacks;   /* 1 = user stack (into the `stacks` map) on every block */
	__u32 stw_reason_in_al; /* 1 = stopTheWorldWithSema(reason stwReason) (Go >= 1.21) */
	__u32 map_swiss;      /* 1 = Swiss-table maps (Go >= 1.24 without GOEXPERIMENT=noswissmap) */
	/* spans: byte offsets into net/http and net/url structs */
	__u64 m_procid;
	__u64 req_method;
	__u64 req_url;
	__u64 req_header;
	__u64 req_content_length;
	__u64 url_host;
	__u64 url_path;
	__u64 url_raw_query;
	__u64 resp_status_code;
	__u32 keep_query;     /* 1 = copy URL.RawQuery (--keep-query) */
	__u32 stack_depth;    /* frames per stored stack: the `stacks` map's value_size / 8 */
};

/*
 * Every type userspace reads, named once: gcap.bpf.c holds a (never read) pointer to this
 * struct, so clang emits all of them into the object's BTF and the skeleton generates their
 * Rust definitions. A new record or enum that userspace reads goes here too.
 */
struct gcap_abi {
	struct gcap_hdr hdr;
	struct gcap_ev_create create;
	struct gcap_ev_goid goid;
	struct gcap_ev_block block;
	struct gcap_ev_unblock unblock;
	struct gcap_ev_runtime runtime;
	struct gcap_ev_switch sched_switch;
	struct gcap_ev_proc_exit proc_exit;
	struct gcap_ev_span_start span_start;
	struct gcap_ev_span_end span_end;
	struct gcap_ev_sample sample;
	enum gcap_kind kind;
	enum gcap_probe probe;
	enum gcap_lost lost;
	enum gcap_flag flag;
	enum gcap_cookie cookie;
	enum gcap_span_kind span_kind;
};

#endif

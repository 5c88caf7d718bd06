/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): spans, for net/http servers and clients
 * and database/sql.
 *
 * Entry probes sit after the stack check like the runtime ones (one hit per call, no
 * morestack re-entry). Client and SQL spans end on every RET of the same function; server
 * spans end at emulated sites after the handler returned (http_serve_done,
 * http2_handler_done), or on the RETs of serverHandler.ServeHTTP when a binary has no such
 * site (a RET is single-stepped by the kernel: ~13 us a hit). Records carry the
 * goid (R14), never a thread id, as key: userspace pairs starts and ends per (pid, goid),
 * so a request that moves to another OS thread mid-way still pairs. Strings are copied
 * bounded into the record with their full Go length. Nothing here writes user memory.
 */

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
#define WRITE_HEADER_PROBE(name, probe)                                                    \
	SEC("uprobe")                                                                      \
	int name(struct pt_regs *ctx)                                                      \
	{                                                                                  \
		if (restarting(ctx))                                                       \
			return 0;                                                          \
		count(probe);                                                              \
		return span_end(ctx, GCAP_HTTP_STATUS, probe, GCAP_SPAN_HTTP_SERVER, ctx->bx, 0); \
	}

WRITE_HEADER_PROBE(http_write_header, GCAP_P_HTTP_WRITE_HEADER)
WRITE_HEADER_PROBE(http2_write_header, GCAP_P_HTTP2_WRITE_HEADER)

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

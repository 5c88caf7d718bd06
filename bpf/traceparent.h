/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Part of gcap.bpf.c (included once, in order): finds the value of the request's
 * "Traceparent" header in its Go header map, for the span-start records.
 */

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
 * Header-map scan state, shared by the bpf_loop callbacks below (an unrolled 16 x 8 slot
 * scan blows the verifier's 1M-instruction budget). It lives in a per-CPU map, not on the
 * stack: the verifier tracks every scalar stored on the stack, and newer kernels verify a
 * bpf_loop callback again for each distinct state it is entered with, so with the state on
 * the stack the nested scan of a Swiss map took over 1M instructions to verify (Linux
 * 6.18); values in a map are opaque to it, and each callback is verified a few times.
 *
 * Bucket maps (Go <= 1.23, and GOEXPERIMENT=noswissmap; Go's runtime/map.go): hmap.B @9,
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
	__u64 mark;       /* who scans: see header_find */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hdr_scan);
} hdr_scans SEC(".maps");

/* bpf_loop's context must be on the stack: it holds the map value's address. */
struct hdr_ctx {
	struct hdr_scan *st;
};

static long slot_cb(__u64 j, struct hdr_ctx *c_)
{
	struct hdr_scan *st = c_->st;
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

static long visit_cb(__u64 i, struct hdr_ctx *c_)
{
	struct hdr_scan *st = c_->st;
	if (!st->cur)
		return 1;
	st->ctrl = rd(st->cur);
	bpf_loop(8, slot_cb, c_, 0);
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

/* Address of the []string value of "Traceparent" in the header map `m`, or 0. The scan
 * state is this CPU's: a program preempted mid-scan by another run of it on the same CPU
 * would find its state changed, so each run marks it and checks the mark at the end. */
static __always_inline __u64 header_find(__u64 m)
{
	__u32 zero = 0;
	struct hdr_ctx c_ = {.st = bpf_map_lookup_elem(&hdr_scans, &zero)};
	struct hdr_scan *st = c_.st;
	if (!st)
		return 0;
	__builtin_memset(st, 0, sizeof(*st));
	__u64 mark = bpf_get_current_pid_tgid() ^ bpf_ktime_get_ns();
	st->mark = mark;
	if (cfg.map_swiss) {
		st->dir = rd(m + 16);
		st->dir_len = (__s64)rd(m + 24);
		if (st->dir_len > 0)
			swiss_next_table(st);
		else
			st->cur = st->dir;
	} else {
		__u8 B = 0;
		bpf_probe_read_user(&B, 1, (const void *)(m + 9));
		st->buckets = rd(m + 16);
		st->old = rd(m + 24);
		st->nb = B > 4 ? 16 : (1u << B);
		st->nold = st->old ? (st->nb > 1 ? st->nb / 2 : 1) : 0;
		st->cur = st->buckets;
	}
	bpf_loop(HDR_VISITS, visit_cb, &c_, 0);
	return st->mark == mark ? st->found : 0;
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

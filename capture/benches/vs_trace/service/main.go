// vs_trace service: a goroutine-heavy loopback HTTP service, the workload of
// scripts/bench-vs-trace.sh (gcap vs Go's runtime/trace, docs/BENCHMARKS.md).
//
//	service [-addr 127.0.0.1:0] [-fanout 4] [-spin 200] [-trace FILE [-trace-for DURATION]]
//	        [-slow 20ms -slow-every 10s -slow-for 1s -slow-one-in 5]
//
// GET /work spawns -fanout goroutines. Each one does a little arithmetic (-spin rounds of
// xorshift: 200 is a trivial handler, ~25,000 makes ~100 µs of CPU a request at -fanout 4),
// takes a mutex shared by the whole service to update a counter table, and sends its result
// on an unbuffered channel the handler receives from. So every request creates,
// starts, blocks (chan send / receive, sometimes sync.Mutex.Lock), wakes and ends
// several goroutines, besides the connection goroutine's network waits.
// GET /health answers "ok" and does nothing else.
//
// With -slow D the service has slow episodes, a cause the report must find: during the
// last -slow-for of every -slow-every since launch, one request in -slow-one-in has its
// first part goroutine sleep D (in slowPart) before it answers, so the handler waits for it.
//
// With -trace FILE the service runs Go's execution tracer from launch (trace.Start)
// and stops it after -trace-for (0: at SIGINT/SIGTERM), writing FILE. On SIGINT or
// SIGTERM it stops the tracer, closes FILE and exits 0. It prints "listening on ADDR"
// on stdout once it accepts connections. Standard library only; Go 1.19+.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/trace"
	"sync"
	"syscall"
	"time"
)

type table struct {
	mu     sync.Mutex
	counts [64]uint64
}

var shared table

var (
	spin      = flag.Int("spin", 200, "xorshift rounds per part goroutine (CPU per request)")
	slow      = flag.Duration("slow", 0, "sleep of a slow request's first part (0: no slow episodes)")
	slowEvery = flag.Duration("slow-every", 10*time.Second, "period of the slow episodes")
	slowFor   = flag.Duration("slow-for", time.Second, "length of a slow episode, at the end of each period")
	slowOneIn = flag.Int("slow-one-in", 5, "during an episode, one request in this many is slow")
	launched  = time.Now()
)

// slowPart is the known cause of the slow episodes.
//
//go:noinline
func slowPart(d time.Duration) { time.Sleep(d) }

//go:noinline
func part(seed, i int, out chan<- uint64, slowBy time.Duration) {
	if slowBy > 0 {
		slowPart(slowBy)
	}
	x := uint64(seed*31 + i)
	for k := 0; k < *spin; k++ { // CPU work
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	shared.mu.Lock()
	shared.counts[x%64]++
	v := shared.counts[x%64]
	shared.mu.Unlock()
	out <- x + v
}

var seq struct {
	sync.Mutex
	n int
}

func work(w http.ResponseWriter, fanout int) {
	seq.Lock()
	seq.n++
	seed := seq.n
	seq.Unlock()
	var slowBy time.Duration
	if *slow > 0 && *slowOneIn > 0 && seed%*slowOneIn == 0 &&
		time.Since(launched)%*slowEvery >= *slowEvery-*slowFor {
		slowBy = *slow
	}
	out := make(chan uint64)
	for i := 0; i < fanout; i++ {
		go part(seed, i, out, slowBy)
		slowBy = 0
	}
	var sum uint64
	for i := 0; i < fanout; i++ {
		sum += <-out
	}
	fmt.Fprintf(w, "%d\n", sum)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	fanout := flag.Int("fanout", 4, "goroutines spawned per /work request")
	traceFile := flag.String("trace", "", "run runtime/trace from launch, writing this file")
	traceFor := flag.Duration("trace-for", 0, "stop the trace after this long (0: at SIGINT/SIGTERM)")
	flag.Parse()

	var (
		traceMu  sync.Mutex
		traceOut *os.File
		traceBuf *bufio.Writer
	)
	stopTrace := func() {
		traceMu.Lock()
		defer traceMu.Unlock()
		if traceOut == nil {
			return
		}
		trace.Stop()
		if err := traceBuf.Flush(); err != nil {
			log.Fatal(err)
		}
		if err := traceOut.Close(); err != nil {
			log.Fatal(err)
		}
		traceOut = nil
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			log.Fatal(err)
		}
		traceOut, traceBuf = f, bufio.NewWriterSize(f, 1<<20)
		if err := trace.Start(traceBuf); err != nil {
			log.Fatal(err)
		}
		if *traceFor > 0 {
			time.AfterFunc(*traceFor, stopTrace)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) { work(w, *fanout) })
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	go func() { log.Fatal(http.Serve(ln, mux)) }()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	stopTrace()
}

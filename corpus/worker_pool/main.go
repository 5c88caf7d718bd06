// worker_pool: GET /api/work hands a CPU-bound job to a small fixed pool of
// -workers goroutines (main.worker, default 1) over the jobs channel and
// waits for the answer on a per-job result channel. Each job burns -work
// iterations (~2 ms of CPU). When jobs arrive faster than the pool serves them
// (e.g. 400/s) they queue in the channel, and handlers spend their time in
// the chan receive in main.submit until a worker gets to their job.
// GET /api/health does not use the pool. The pool is deliberately smaller
// than the machine (1 worker): with as many busy workers as CPUs every
// goroutine would also wait for a CPU (that is the cpu_starvation case).
//
// Expected root cause for GET /api/work: chan, where main.submit at
// MARK:where, blocker main.worker created at MARK:go-worker (the waker of the
// receive). An analyzer that follows the waker may further split the wait
// into the worker's on_cpu time spent on queued jobs.
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
)

type job struct {
	n   int
	res chan uint64 // buffered (1): a worker never blocks replying
}

// jobs is the pool's queue. It is large so that submitters never block on the
// send; all the waiting happens on the result channel.
var jobs = make(chan job, 4096)

// worker serves jobs forever.
//
//go:noinline
func worker(id int) {
	for j := range jobs {
		j.res <- burn(j.n) // MARK:wake wakes the waiting handler
	}
}

// burn is pure CPU work (FNV-1a style hash loop, ~1 ns per iteration).
//
//go:noinline
func burn(n int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < n; i++ {
		h ^= uint64(i)
		h *= 1099511628211
	}
	return h
}

// submit queues a job and waits for its result.
//
//go:noinline
func submit(n int) uint64 {
	j := job{n: n, res: make(chan uint64, 1)}
	jobs <- j
	return <-j.res // MARK:where waits until a worker has finished the job
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	workers := flag.Int("workers", 1, "pool size")
	work := flag.Int("work", 2000000, "iterations of CPU work per job")
	flag.Parse()

	for i := 0; i < *workers; i++ {
		go worker(i) // MARK:go-worker the pool
	}

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/work":
			fmt.Fprintf(w, "{\"result\":%d}\n", submit(*work))
		case "/api/health":
			fmt.Fprintln(w, "ok")
		default:
			http.NotFound(w, r)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, http.HandlerFunc(h)))
}

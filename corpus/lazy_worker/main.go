// lazy_worker: GET /api/orders hands a CPU-bound job (-work iterations, ~2 ms)
// to one worker goroutine and waits for the answer (MARK:where). The worker is
// started lazily, by the first request, through a sync.Once in
// main.(*pool).start that calls main.(*pool).spawn (MARK:go-worker), and serves
// every later request. At 300
// jobs/s (RATE=600, half of it /api/orders) jobs queue behind each other.
// GET /api/health does not use the worker.
//
// Expected: GET /api/orders is chan at MARK:where, blocked by main.worker
// created at main.(*pool).spawn (MARK:go-worker), not by "other GET /api/orders
// requests" (the first request, which started the worker, ended long ago).
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
)

type job struct {
	n   int
	res chan uint64
}

type pool struct {
	once sync.Once
	jobs chan job
}

// worker serves jobs forever.
//
//go:noinline
func worker(jobs chan job) {
	for j := range jobs {
		j.res <- burn(j.n)
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

// start starts the worker the first time it is called.
//
//go:noinline
func (p *pool) start() {
	p.once.Do(p.spawn)
}

// spawn makes the queue and starts the worker.
//
//go:noinline
func (p *pool) spawn() {
	p.jobs = make(chan job, 4096)
	go worker(p.jobs) // MARK:go-worker started by the first request
}

// submit queues a job and waits for its result.
//
//go:noinline
func (p *pool) submit(n int) uint64 {
	p.start()
	j := job{n: n, res: make(chan uint64, 1)}
	p.jobs <- j
	return <-j.res // MARK:where waits until the worker has finished the job
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	work := flag.Int("work", 2000000, "iterations of CPU work per job")
	flag.Parse()
	p := &pool{}

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/orders":
			fmt.Fprintf(w, "{\"result\":%d}\n", p.submit(*work))
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

// cpu_starvation: the process runs with runtime.GOMAXPROCS(1) and -spinners
// background goroutines (main.spin) that loop on the CPU forever without ever
// blocking. Only the scheduler's preemption (sysmon, after ~10 ms) takes the
// single P away from a spinner, so any goroutine that becomes runnable waits
// in the run queue behind the spinners' time slices.
//
// GET /api/work does its work in -steps short steps and yields between them
// (runtime.Gosched in main.step, standing in for the channel operations, locks
// and syscalls of a real handler); each yield puts it back at the end of the
// run queue, so it sits runnable ~spinners x 10 ms per step. GET /api/health
// becomes runnable only once (when its request arrives), so it is delayed
// too (the whole process is starved) but an order of magnitude less.
//
// Expected root cause for GET /api/work: runnable, where main.step at
// MARK:where; the goroutines holding the CPU are main.spin created at
// MARK:go-spin.
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime"
)

var sink uint64

// spin never blocks and never calls the scheduler itself.
//
//go:noinline
func spin(seed uint64) {
	x := seed
	for {
		x = x*6364136223846793005 + 1442695040888963407 // MARK:spin busy loop
		if x == 0 {
			sink = x
		}
	}
}

// step does a little work and then yields; after the yield the goroutine is
// runnable until the spinners' time slices have run.
//
//go:noinline
func step(i int) uint64 {
	x := uint64(i)
	for j := 0; j < 1000; j++ {
		x = x*31 + uint64(j)
	}
	runtime.Gosched() // MARK:where back to the end of the run queue
	return x
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	spinners := flag.Int("spinners", 2, "busy-loop goroutines")
	steps := flag.Int("steps", 5, "yielding steps per /api/work request")
	flag.Parse()

	runtime.GOMAXPROCS(1) // MARK:gomaxprocs
	for i := 0; i < *spinners; i++ {
		go spin(uint64(i) + 1) // MARK:go-spin
	}

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/work":
			var x uint64
			for i := 0; i < *steps; i++ {
				x += step(i)
			}
			fmt.Fprintf(w, "{\"result\":%d}\n", x)
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

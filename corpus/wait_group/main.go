// wait_group: GET /api/fanout starts -n goroutines (main.work, MARK:go-work) and
// waits for them with a sync.WaitGroup (MARK:wait). One of them, every time,
// sleeps -slow (20ms) in main.work (MARK:slow); the others finish at once.
// Before Go 1.24 WaitGroup.Wait parks as `semacquire` (the wait reason of
// mutexes on Go 1.19), from 1.24 on as `sync.WaitGroup.Wait`. GET /api/health
// answers at once.
//
// Expected on every Go version: GET /api/fanout is sleep at main.work
// (MARK:slow), reached by following the goroutine whose Done ended the wait;
// never mutex (the waiter's own time is other, not a lock).
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
	"time"
)

// work is one part of the fan-out; part 0 is the slow one.
//
//go:noinline
func work(part int, slow time.Duration, wg *sync.WaitGroup) {
	defer wg.Done()
	if part == 0 {
		time.Sleep(slow) // MARK:slow the slow part
	}
}

// fanout runs n parts and waits for all of them.
//
//go:noinline
func fanout(n int, slow time.Duration) int {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go work(i, slow, &wg) // MARK:go-work
	}
	wg.Wait() // MARK:wait waits for every part
	return n
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	n := flag.Int("n", 3, "parts per request")
	slow := flag.Duration("slow", 20*time.Millisecond, "how long the slow part sleeps")
	flag.Parse()

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/fanout":
			fmt.Fprintf(w, "{\"parts\":%d}\n", fanout(*n, *slow))
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

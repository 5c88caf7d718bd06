// budget: the HTTP service the budgeted-capture tests (capture/tests/budget_e2e.rs) load
// while gcap attaches and detaches its probe groups around it.
//
// GET /work burns about -work of CPU in the handler, hands two pieces of it to goroutines
// it waits for on a channel, and grows a goroutine's stack deeply (a recursion with a
// large frame: morestack and stack copies while probes come and go). After -slow-after
// (0: never) every request also sleeps -slow: the service turns slow. It prints
// "listening on ADDR" once it accepts connections, and serves until killed.
//
// Usage: budget [-addr 127.0.0.1:0] [-work 1ms] [-slow-after 0] [-slow 50ms].
// Standard library only; builds with Go 1.19-1.27.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

var sink uint64

// burn spins for about d of CPU.
func burn(d time.Duration) uint64 {
	var x uint64 = 1
	for start := time.Now(); time.Since(start) < d; {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

// deep recurses n times with a 512-byte frame: the goroutine's stack grows (and is copied)
// several times.
//
//go:noinline
func deep(n int) uint64 {
	var pad [64]uint64
	pad[n%64] = uint64(n)
	if n == 0 {
		return pad[0]
	}
	return deep(n-1) + pad[n%64]
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	work := flag.Duration("work", time.Millisecond, "CPU per request")
	slowAfter := flag.Duration("slow-after", 0, "turn slow after this long (0: never)")
	slow := flag.Duration("slow", 50*time.Millisecond, "extra time per request once slow")
	flag.Parse()

	started := time.Now()
	http.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		done := make(chan uint64)
		for i := 0; i < 2; i++ {
			go func() { done <- burn(*work / 4) }()
		}
		go func() { done <- deep(64) }()
		x := burn(*work / 2)
		for i := 0; i < 3; i++ {
			x += <-done
		}
		atomic.AddUint64(&sink, x)
		if *slowAfter > 0 && time.Since(started) > *slowAfter {
			time.Sleep(*slow)
		}
		fmt.Fprintln(w, "ok")
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	if err := http.Serve(ln, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// gc_pressure: GET /api/alloc allocates -allocs short-lived 256 KiB slices per
// request. The process keeps a pointer-dense live heap (-live nodes, ~8 MB by
// default) and runs with debug.SetGCPercent(10), so the heap goal is only 10%
// above the live heap: a GC cycle starts every few allocations, each cycle has
// to mark the whole live heap, and the allocating goroutine is made to pay for
// it with GC assists (plus the stop-the-world pauses). GET /api/health barely
// allocates: it owes almost no assist work, but it does share the CPUs with
// the mark workers, so it is slowed too, much less.
//
// Expected root cause for GET /api/alloc: gc (assists inside
// runtime.mallocgc), where main.churn at MARK:where.
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"runtime/debug"
)

// node is pointer-dense so the live heap is expensive to mark.
type node struct {
	next, peer *node
	val        [2]uint64
}

var (
	live []*node // the long-lived heap every GC cycle must mark
	sink []byte  // makes the churned slices escape to the heap
)

func buildLiveHeap(n int) {
	live = make([]*node, n)
	for i := range live {
		live[i] = &node{val: [2]uint64{uint64(i), uint64(i) * 3}}
		if i > 0 {
			live[i].next = live[i-1]
			live[i].peer = live[(i*7919)%i]
		}
	}
}

// churn allocates n short-lived 256 KiB slices; with GOGC=10 nearly every
// allocation has to do GC assist work first.
//
//go:noinline
func churn(n int) int {
	sum := 0
	for i := 0; i < n; i++ {
		b := make([]byte, 256<<10) // MARK:where allocation that triggers GC assists
		b[i%len(b)] = byte(i)
		sum += int(b[(i*4093)%len(b)])
		sink = b
	}
	sink = nil
	return sum
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	gogc := flag.Int("gogc", 10, "GC percent (debug.SetGCPercent)")
	nlive := flag.Int("live", 200000, "nodes in the long-lived heap (32 bytes each)")
	allocs := flag.Int("allocs", 8, "256 KiB allocations per /api/alloc request")
	flag.Parse()

	buildLiveHeap(*nlive)
	debug.SetGCPercent(*gogc) // MARK:gogc after building the heap, so startup is quick

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/alloc":
			fmt.Fprintf(w, "{\"sum\":%d}\n", churn(*allocs))
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

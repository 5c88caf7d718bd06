// hung_request: GET /api/orders answers at once, except every -every'th request
// (default 200), which waits forever on a reply that never comes (a stuck
// dependency: the receive in main.(*api).orders at MARK:where, and nobody ever
// sends). Those requests are still running when a capture stops, however long it
// lasts. GET /api/health answers at once.
//
// Expected: the hung requests count, with their duration so far (a lower bound),
// so an SLO such as `GET /api/orders: p99 < 100ms` is breached although every
// request that finished took microseconds; the cause is chan at MARK:where, with
// no goroutine to blame (the wait never ended).
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync/atomic"
)

type api struct {
	every int64
	n     atomic.Int64
	stuck chan struct{} // never closed, never sent to
}

// orders answers, unless this request is one of the stuck ones.
//
//go:noinline
func (a *api) orders(w http.ResponseWriter) {
	if a.n.Add(1)%a.every == 0 {
		<-a.stuck // MARK:where waits for a reply that never comes
	}
	fmt.Fprintln(w, `{"orders":[]}`)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	every := flag.Int64("every", 50, "every N-th /api/orders request hangs")
	flag.Parse()
	a := &api{every: *every, stuck: make(chan struct{})}

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/orders":
			a.orders(w)
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

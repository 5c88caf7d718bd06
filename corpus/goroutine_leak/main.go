// goroutine_leak: every GET /api/search starts a watcher goroutine
// (main.leakyWorker) meant to stop when the request is done, but the handler
// never closes the done channel it gave it. Nobody else holds the channel, so
// each watcher blocks forever in a chan receive and goroutines pile up, one
// per request. GET /api/health starts no goroutine and reports the current
// goroutine count, so the growth can be watched from outside.
//
// Expected: report.goroutines.leak_suspects contains creation_site
// "main.search (main.go:LINE of MARK:go-leak)", blocked_on "chan receive",
// count = number of /api/search requests during the capture. Latency is not
// affected (no SLO breach expected from this case alone).
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
	"strings"
)

// leakyWorker waits for a close that never comes.
//
//go:noinline
func leakyWorker(done chan struct{}, query string) {
	<-done // MARK:blocked blocks forever: nobody closes or sends on done
	_ = query
}

// search starts the watcher and (the bug) returns without close(done).
//
//go:noinline
func search(w http.ResponseWriter, r *http.Request) {
	done := make(chan struct{})
	q := r.URL.Query().Get("q")
	go leakyWorker(done, q) // MARK:go-leak
	fmt.Fprintf(w, "{\"query\":%q,\"hits\":%d}\n", q, strings.Count(q, "a"))
	// BUG: missing `defer close(done)`.
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/search":
			search(w, r)
		case "/api/health":
			fmt.Fprintf(w, "{\"goroutines\":%d}\n", runtime.NumGoroutine())
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

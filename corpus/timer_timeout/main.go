// timer_timeout: two endpoints whose time is spent waiting for a timer, in a
// select that could also have been ended by a channel nobody sends to.
//
//   - GET /api/poll waits in main.poll (MARK:poll) for time.After(-poll, 20ms):
//     the runtime's timer ends the select, no goroutine wakes it.
//   - GET /api/ctx waits in main.withDeadline (MARK:deadline) for the deadline of
//     context.WithTimeout(-timeout, 15ms): time.AfterFunc starts a goroutine
//     (created at time.goFunc) when the deadline passes, which cancels the
//     context and so wakes the select.
//
// GET /api/health answers at once.
//
// Expected: both slow endpoints are sleep at their MARK (a timer, not a channel),
// with no goroutine to blame: never chan blocked by time.goFunc.
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"
)

// never is a channel nobody sends to: the other case of every select.
var never = make(chan struct{})

// poll waits for the timer (or a message that never comes).
//
//go:noinline
func poll(d time.Duration) string {
	select { // MARK:poll the timer ends the wait
	case <-time.After(d):
		return "timeout"
	case <-never:
		return "message"
	}
}

// withDeadline waits until the request's deadline (or a message that never comes).
//
//go:noinline
func withDeadline(parent context.Context, d time.Duration) string {
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	select { // MARK:deadline the context's deadline ends the wait
	case <-ctx.Done():
		return ctx.Err().Error()
	case <-never:
		return "message"
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	pollFor := flag.Duration("poll", 20*time.Millisecond, "how long /api/poll waits")
	timeout := flag.Duration("timeout", 15*time.Millisecond, "the deadline of /api/ctx")
	flag.Parse()

	h := func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/poll":
			fmt.Fprintln(w, poll(*pollFor))
		case "/api/ctx":
			fmt.Fprintln(w, withDeadline(r.Context(), *timeout))
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

// lock_convoy: GET /api/orders is slow because a background goroutine,
// main.(*store).refresh (started by `go s.refresh()` in main.main), takes the
// store's sync.Mutex every -every and holds it across a time.Sleep of -hold
// (a "reload the cache under the lock" bug). Requests that arrive meanwhile
// queue on the mutex in main.(*store).get. GET /api/health takes no lock.
//
// Expected root cause for GET /api/orders: mutex, where main.(*store).get at
// the MARK:where line, blocker main.(*store).refresh created at MARK:go-refresh.
// Lines tagged "MARK:" are the documented locations (see ../README.md).
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type store struct {
	mu     sync.Mutex
	orders map[int]string
	hold   time.Duration // how long refresh holds the lock
	every  time.Duration // pause between two refreshes
}

// get runs in every /api/orders request. Its Lock waits whenever refresh is
// inside its critical section.
//
//go:noinline
func (s *store) get(id int) string {
	s.mu.Lock() // MARK:where requests queue here behind refresh
	v := s.orders[id]
	s.mu.Unlock()
	return v
}

// refresh runs forever. It sleeps while holding the lock, so for -hold out of
// every (-every + -hold) the lock is unavailable to handlers.
//
//go:noinline
func (s *store) refresh() {
	for gen := 0; ; gen++ {
		time.Sleep(s.every)
		s.mu.Lock()
		time.Sleep(s.hold) // MARK:hold the lock is held across this sleep
		for id := range s.orders {
			s.orders[id] = fmt.Sprintf("order-%d-gen-%d", id, gen)
		}
		s.mu.Unlock()
	}
}

var reqs uint64

func handler(s *store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case "/api/orders":
			id, err := strconv.Atoi(r.URL.Query().Get("id"))
			if err != nil {
				id = int(atomic.AddUint64(&reqs, 1) % 100)
			}
			fmt.Fprintf(w, "{\"id\":%d,\"order\":%q}\n", id, s.get(id))
		case "/api/health":
			fmt.Fprintln(w, "ok")
		default:
			http.NotFound(w, r)
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	hold := flag.Duration("hold", 30*time.Millisecond, "how long refresh holds the lock")
	every := flag.Duration("every", 70*time.Millisecond, "pause between refreshes")
	flag.Parse()

	s := &store{orders: make(map[int]string), hold: *hold, every: *every}
	for id := 0; id < 100; id++ {
		s.orders[id] = fmt.Sprintf("order-%d", id)
	}
	go s.refresh() // MARK:go-refresh the lock holder

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, handler(s)))
}

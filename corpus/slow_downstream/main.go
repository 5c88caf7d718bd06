// slow_downstream: GET /api/checkout (frontend) calls GET /price on a backend
// HTTP server with net/http's client. The backend answers one request in
// -every after a 50-150 ms sleep (deterministic sequence), the others at once,
// so slow checkouts spend their time inside the outbound call.
// GET /api/health (frontend) makes no call.
//
// Modes: -mode=all (default) runs the backend in the same process on another
// loopback port (printed as "backend at http://ADDR"); -mode=backend runs only
// the backend (on -addr); -mode=frontend runs only the frontend and calls
// -backend URL. Two processes let cross-process joins be tested.
//
// W3C trace context: the frontend takes the incoming `traceparent` (or makes
// a new one, 00-<32 hex>-<16 hex>-01) and sends the same trace id with a fresh
// parent id to the backend. The trace id is returned in the X-Trace-Id
// response header; the backend echoes the traceparent it got in its body.
//
// Expected root cause for GET /api/checkout: downstream, where main.fetchPrice
// at MARK:where, blocker "GET 127.0.0.1:PORT/price". In the backend process
// GET /price's own time is sleep in main.slowPrice at MARK:backend-sleep.
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

var (
	every      = flag.Uint64("every", 20, "backend: one /price request in EVERY is slow")
	backendURL string
	priceReqs  uint64
	client     = &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512},
	}
)

// ---- backend ----

// slowPrice is the backend's slow path: 50..150 ms, varied deterministically.
//
//go:noinline
func slowPrice(n uint64) {
	d := time.Duration(50+(n/(*every)*37)%101) * time.Millisecond
	time.Sleep(d) // MARK:backend-sleep
}

func backend(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/price" {
		http.NotFound(w, r)
		return
	}
	if n := atomic.AddUint64(&priceReqs, 1); n%*every == 0 {
		slowPrice(n)
	}
	fmt.Fprintf(w, "{\"price\":42,\"traceparent\":%q}", r.Header.Get("traceparent"))
}

// ---- frontend ----

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// parseTraceparent returns trace id and flags of a valid version-00 header.
func parseTraceparent(tp string) (traceID, flags string, ok bool) {
	p := strings.Split(strings.TrimSpace(tp), "-")
	if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || len(p[3]) != 2 {
		return "", "", false
	}
	for _, s := range p[1:] {
		if _, err := hex.DecodeString(s); err != nil || strings.ToLower(s) != s {
			return "", "", false
		}
	}
	if p[1] == strings.Repeat("0", 32) || p[2] == strings.Repeat("0", 16) {
		return "", "", false
	}
	return p[1], p[3], true
}

// fetchPrice is the outbound call; slow checkouts wait in client.Do.
//
//go:noinline
func fetchPrice(ctx context.Context, traceID, flags string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, backendURL+"/price", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("traceparent", "00-"+traceID+"-"+randHex(8)+"-"+flags)
	resp, err := client.Do(req) // MARK:where the downstream call
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("backend: %s", resp.Status)
	}
	return string(b), err
}

func frontend(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/api/checkout":
		traceID, flags, ok := parseTraceparent(r.Header.Get("traceparent"))
		if !ok {
			traceID, flags = randHex(16), "01"
		}
		w.Header().Set("X-Trace-Id", traceID)
		price, err := fetchPrice(r.Context(), traceID, flags)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(w, "{\"checkout\":\"ok\",\"backend\":%s}\n", price)
	case "/api/health":
		fmt.Fprintln(w, "ok")
	default:
		http.NotFound(w, r)
	}
}

func listen(addr string) net.Listener {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	return ln
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	mode := flag.String("mode", "all", "all | frontend | backend")
	flag.StringVar(&backendURL, "backend", "", "frontend mode: backend base URL, e.g. http://127.0.0.1:9000")
	flag.Parse()
	if *every == 0 {
		log.Fatal("-every must be > 0")
	}

	switch *mode {
	case "backend":
		ln := listen(*addr)
		fmt.Printf("listening on %s\n", ln.Addr())
		log.Fatal(http.Serve(ln, http.HandlerFunc(backend)))
	case "all":
		bl := listen("127.0.0.1:0")
		backendURL = "http://" + bl.Addr().String()
		fmt.Printf("backend at %s\n", backendURL)
		go func() { log.Fatal(http.Serve(bl, http.HandlerFunc(backend))) }()
	case "frontend":
		if backendURL == "" {
			log.Fatal("-mode=frontend needs -backend URL")
		}
		backendURL = strings.TrimRight(backendURL, "/")
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	ln := listen(*addr)
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, http.HandlerFunc(frontend)))
}

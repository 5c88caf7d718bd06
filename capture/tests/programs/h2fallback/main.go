// h2fallback: a net/http server (HTTP/1.1) linked with a package gcap takes for an HTTP/2
// server whose handler end it cannot find (./http2), so gcap falls back to ending server
// spans at the RETs of serverHandler.ServeHTTP. Requests: /ok, /slow (5 ms) and /hijack
// (answers on the hijacked connection, then takes 5 ms more). Prints one JSON line of facts:
// the requests and the goroutine that served each.
//
// Usage: h2fallback [-n N]. Standard library only (GOPATH mode, relative import).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"./http2"
)

func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	id, _ := strconv.ParseUint(strings.Fields(string(buf[:n]))[1], 10, 64)
	return id
}

var (
	served  sync.Map       // path+id -> server goid
	running sync.WaitGroup // handlers that have not returned
)

func handler(w http.ResponseWriter, r *http.Request) {
	defer running.Done()
	served.Store(r.URL.Path+r.URL.RawQuery, goid())
	switch r.URL.Path {
	case "/slow":
		time.Sleep(5 * time.Millisecond)
	case "/hijack":
		conn, bufrw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		// No length: the client reads the body until the handler closes the connection.
		bufrw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok")
		bufrw.Flush()
		time.Sleep(5 * time.Millisecond)
		conn.Close()
		return
	}
	w.Write([]byte("ok"))
}

type fact struct {
	Path       string `json:"path"`
	ServerGoid uint64 `json:"server_goid"`
}

func main() {
	n := flag.Int("n", 10, "requests per path")
	flag.Parse()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go http.Serve(ln, http.HandlerFunc(handler))
	base := "http://" + ln.Addr().String()
	var facts []fact
	for _, path := range []string{"/ok", "/slow", "/hijack"} {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: path == "/hijack"}}
		for i := 0; i < *n; i++ {
			running.Add(1)
			resp, err := c.Get(fmt.Sprintf("%s%s?%d", base, path, i))
			if err != nil {
				panic(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			g, _ := served.Load(fmt.Sprintf("%s%d", path, i))
			facts = append(facts, fact{Path: path, ServerGoid: g.(uint64)})
		}
		c.CloseIdleConnections()
	}
	// Hijacking handlers may still run after their client is done: wait for them (and a
	// little more: gcap sees the request end when ServeHTTP returns, after the handler).
	running.Wait()
	time.Sleep(20 * time.Millisecond)
	ran := http2.Run(func() {})
	out, _ := json.Marshal(map[string]interface{}{"requests": facts, "fake_runs": ran})
	fmt.Println(string(out))
}

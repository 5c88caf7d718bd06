// spans: a net/http server and client in one process, plus database/sql over a tiny
// in-process driver, with known requests, statuses, traceparents and queries. The test
// (capture/tests/spans_e2e.rs) runs it under gcap and compares the capture with the JSON
// facts this program prints last: which goroutine served and which issued each request,
// and which goroutine ran each query. Besides the keep-alive HTTP/1.1 and HTTP/2 requests,
// two handlers hijack their connection (and take 5 ms more before returning) and one per
// protocol panics (http.ErrAbortHandler: the client sees a broken connection or stream).
//
// Usage: spans [-clients N] [-per N]. Standard library only; builds with Go 1.19-1.27.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	f := strings.Fields(string(buf[:n]))
	id, _ := strconv.ParseUint(f[1], 10, 64)
	return id
}

type reqFact struct {
	ID          int    `json:"id"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	Query       string `json:"query"`
	Status      int    `json:"status"`
	Traceparent string `json:"traceparent"`
	ClientGoid  uint64 `json:"client_goid"`
	ServerGoid  uint64 `json:"server_goid"`
	Proto       int    `json:"proto"`
	BodyLen     int    `json:"body_len"`
	Host        string `json:"host"`
	// "" (a normal request), "hijack" or "panic" (the client got an error, no status).
	Kind string `json:"kind"`
}

type sqlFact struct {
	Query string `json:"query"`
	Goid  uint64 `json:"goid"`
	Error bool   `json:"error"`
}

var served sync.Map // request id -> server goid

func handler(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.Header.Get("X-Req-Id"))
	served.Store(id, goid())
	io.Copy(io.Discard, r.Body)
	switch r.URL.Path {
	case "/api/ok":
		w.Write([]byte("ok"))
	case "/api/create":
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte("created"))
	case "/api/missing":
		http.NotFound(w, r)
	case "/api/fail":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "/api/empty":
		// nothing written: net/http answers 200 after the handler returns
	case "/api/slow":
		time.Sleep(5 * time.Millisecond)
		runtime.Gosched()
		w.WriteHeader(http.StatusAccepted)
	case "/api/hijack":
		// Answer on the raw connection, then keep the handler busy: the request lasts
		// until the handler returns.
		conn, bufrw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		// No length: the client reads the body until the handler closes the connection.
		bufrw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nok")
		bufrw.Flush()
		time.Sleep(5 * time.Millisecond)
		conn.Close()
	case "/api/panic":
		panic(http.ErrAbortHandler)
	default:
		w.WriteHeader(http.StatusTeapot)
	}
}

type route struct {
	method, path, query string
	status              int // 0: the handler panics, the client gets an error
	body                string
}

// plan: path, method, status for request i.
var routes = []route{
	{"GET", "/api/ok", "secret=s3cr3t&x=1", 200, ""},
	{"POST", "/api/create", "", 201, "hello"},
	{"GET", "/api/missing", "", 404, ""},
	{"GET", "/api/fail", "", 500, ""},
	{"GET", "/api/empty", "", 200, ""},
	{"GET", "/api/slow", "", 202, ""},
}

func traceparent(i int) string {
	if i%3 == 2 {
		return "" // every third request carries none
	}
	return fmt.Sprintf("00-%032x-%016x-%02x", 0xabc000+i, 0xdef000+i, i%2)
}

func do(c *http.Client, base string, i int, proto int) reqFact {
	return doRoute(c, base, i, proto, routes[i%len(routes)], "")
}

var (
	hijackRoute = route{"GET", "/api/hijack", "", 200, ""}
	panicRoute  = route{"GET", "/api/panic", "", 0, ""}
)

func doRoute(c *http.Client, base string, i int, proto int, rt route, kind string) reqFact {
	u := base + rt.path
	if rt.query != "" {
		u += "?" + rt.query
	}
	var body io.Reader
	if rt.body != "" {
		body = bytes.NewBufferString(rt.body)
	}
	req, err := http.NewRequest(rt.method, u, body)
	if err != nil {
		panic(err)
	}
	req.Header.Set("X-Req-Id", strconv.Itoa(i))
	tp := traceparent(i)
	if tp != "" {
		req.Header.Set("Traceparent", tp)
	}
	if i%4 == 1 {
		// enough headers to outgrow one map group / bucket
		for k := 0; k < 12; k++ {
			req.Header.Set(fmt.Sprintf("X-Pad-%d", k), "v")
		}
	}
	resp, err := c.Do(req)
	if kind == "panic" {
		if err == nil {
			panic(fmt.Sprintf("%s: a response (%d) from a panicking handler", u, resp.StatusCode))
		}
	} else {
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != rt.status {
			panic(fmt.Sprintf("%s: status %d, want %d", u, resp.StatusCode, rt.status))
		}
	}
	return reqFact{ID: i, Method: rt.method, Path: rt.path, Query: rt.query, Status: rt.status,
		Traceparent: tp, ClientGoid: goid(), Proto: proto, BodyLen: len(rt.body),
		Host: strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"), Kind: kind}
}

// ---- a tiny database/sql driver: every statement succeeds unless it names missing_table.

type fakeDriver struct{}
type fakeConn struct{}
type fakeRows struct{ n int }
type fakeTx struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return fakeConn{}, nil }
func (fakeConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("fakedb: no prepared statements")
}
func (fakeConn) Close() error              { return nil }
func (fakeConn) Begin() (driver.Tx, error) { return fakeTx{}, nil }
func (fakeTx) Commit() error               { return nil }
func (fakeTx) Rollback() error             { return nil }
func (fakeConn) QueryContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	if strings.Contains(q, "missing_table") {
		return nil, errors.New("fakedb: no such table: missing_table")
	}
	return &fakeRows{}, nil
}
func (fakeConn) ExecContext(_ context.Context, q string, _ []driver.NamedValue) (driver.Result, error) {
	if strings.Contains(q, "missing_table") {
		return nil, errors.New("fakedb: no such table: missing_table")
	}
	return driver.RowsAffected(1), nil
}
func (*fakeRows) Columns() []string { return []string{"v"} }
func (*fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.n > 0 {
		return io.EOF
	}
	r.n++
	dest[0] = int64(1)
	return nil
}

func runSQL() []sqlFact {
	sql.Register("fakedb", fakeDriver{})
	db, err := sql.Open("fakedb", "")
	if err != nil {
		panic(err)
	}
	var facts []sqlFact
	note := func(q string, err error) {
		facts = append(facts, sqlFact{Query: q, Goid: goid(), Error: err != nil})
	}
	q := "CREATE TABLE users (id int, name text)"
	_, err = db.Exec(q)
	note(q, err)
	q = "INSERT INTO users VALUES (7, 'bob')"
	_, err = db.Exec(q)
	note(q, err)
	q = "SELECT name FROM users WHERE id = 42"
	rows, err := db.Query(q)
	note(q, err)
	for rows.Next() {
	}
	rows.Close()
	q = "select count(*) from users where name = 'it''s'"
	var n int
	err = db.QueryRow(q).Scan(&n)
	note(q, err)
	q = "SELECT * FROM missing_table WHERE x = 1.5"
	_, err = db.Query(q)
	if err == nil {
		panic("missing_table query succeeded")
	}
	note(q, err)
	q = "DELETE FROM missing_table"
	_, err = db.ExecContext(context.Background(), q)
	note(q, err)
	tx, err := db.Begin()
	if err != nil {
		panic(err)
	}
	q = "UPDATE users SET name = 'x' WHERE id = 1"
	_, err = tx.Exec(q)
	note(q, err)
	tx.Commit()
	q = "DELETE FROM users WHERE id = ?"
	_, err = db.Exec(q, 7)
	note(q, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for k := 0; k < 2; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			q := fmt.Sprintf("SELECT v FROM t%d WHERE k = %d", k, 100+k)
			rows, err := db.QueryContext(context.Background(), q)
			mu.Lock()
			facts = append(facts, sqlFact{Query: q, Goid: goid(), Error: err != nil})
			mu.Unlock()
			if err == nil {
				rows.Close()
			}
		}(k)
	}
	wg.Wait()
	db.Close()
	return facts
}

var sink uint64

//go:noinline
func burn(d time.Duration) uint64 {
	end := time.Now().Add(d)
	x := uint64(1)
	for time.Now().Before(end) {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink = x
	return goid()
}

func main() {
	clients := flag.Int("clients", 2, "concurrent client goroutines")
	per := flag.Int("per", 30, "HTTP/1.1 requests per client goroutine")
	h2 := flag.Int("h2", 6, "HTTP/2 requests")
	hold := flag.Duration("hold", 0, "sleep before exiting")
	burnFor := flag.Duration("burn", 0, "spin in main.burn on a new goroutine this long (CPU samples)")
	flag.Parse()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(handler)}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()

	var facts []reqFact
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			// one keep-alive connection per client goroutine
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for k := 0; k < *per; k++ {
				f := do(cl, base, c**per+k, 1)
				mu.Lock()
				facts = append(facts, f)
				mu.Unlock()
			}
			cl.CloseIdleConnections()
		}(c)
	}
	wg.Wait()

	// Hijacked connections and a panicking handler, each on a connection of its own (no
	// keep-alive: the transport would retry a failed request on a reused connection).
	oneShot := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for k := 0; k < 2; k++ {
		facts = append(facts, doRoute(oneShot, base, 2000+k, 1, hijackRoute, "hijack"))
	}
	facts = append(facts, doRoute(oneShot, base, 2100, 1, panicRoute, "panic"))

	// HTTP/2 over TLS (httptest's self-signed certificate).
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 {
			panic("not HTTP/2")
		}
		handler(w, r)
	}))
	ts.EnableHTTP2 = true
	ts.StartTLS()
	hc := ts.Client()
	hc.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
	for k := 0; k < *h2; k++ {
		facts = append(facts, do(hc, ts.URL, 1000+k, 2))
	}
	if *h2 > 0 {
		facts = append(facts, doRoute(hc, ts.URL, 3000, 2, panicRoute, "panic"))
	}
	hc.CloseIdleConnections()
	ts.Close()

	for i := range facts {
		g, ok := served.Load(facts[i].ID)
		if !ok {
			panic("request not served")
		}
		facts[i].ServerGoid = g.(uint64)
	}
	sqlFacts := runSQL()
	var burner uint64
	if *burnFor > 0 {
		done := make(chan uint64)
		go func() { done <- burn(*burnFor) }()
		burner = <-done
	}
	time.Sleep(*hold)
	out, _ := json.Marshal(map[string]interface{}{"requests": facts, "sql": sqlFacts,
		"main_goid": goid(), "burner_goid": burner})
	fmt.Println(string(out))
	os.Stdout.Sync()
}

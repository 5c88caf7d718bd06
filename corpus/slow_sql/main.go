// slow_sql: GET /api/orders runs a query through database/sql against a tiny
// in-process driver ("fakedb", defined below). The driver plays the database
// server: the query "SELECT * FROM orders WHERE id = 42" takes -slow (100 ms),
// every other query answers at once. Without ?id= the handler cycles through
// ids 40..59, so one request in 20 is slow. GET /api/users runs a fast query
// (healthy, still SQL); GET /api/health does nothing.
//
// Expected root cause for GET /api/orders: downstream (an sql client span
// "SELECT"), where main.loadOrder at MARK:where, blocker the SQL query. Inside
// the span the time is a time.Sleep in main.serverExec at MARK:db-sleep.
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

const slowQuery = "SELECT * FROM orders WHERE id = 42"

var slowFor = flag.Duration("slow", 100*time.Millisecond, "latency of the slow query")

// ---- the fake database driver (database/sql/driver) ----

type fakeDriver struct{}

func (fakeDriver) Open(name string) (driver.Conn, error) { return &conn{}, nil }

type conn struct{}

func (c *conn) Prepare(q string) (driver.Stmt, error) { return &stmt{q: q}, nil }
func (c *conn) Close() error                          { return nil }
func (c *conn) Begin() (driver.Tx, error)             { return nil, errors.New("fakedb: no transactions") }

// QueryContext (driver.QueryerContext) lets database/sql skip Prepare.
func (c *conn) QueryContext(ctx context.Context, q string, _ []driver.NamedValue) (driver.Rows, error) {
	return serverExec(ctx, q)
}

type stmt struct{ q string }

func (s *stmt) Close() error  { return nil }
func (s *stmt) NumInput() int { return -1 }
func (s *stmt) Exec([]driver.Value) (driver.Result, error) {
	return nil, errors.New("fakedb: read-only")
}
func (s *stmt) Query([]driver.Value) (driver.Rows, error) {
	return serverExec(context.Background(), s.q)
}

// serverExec is the "database server": the slow query sleeps.
//
//go:noinline
func serverExec(ctx context.Context, q string) (driver.Rows, error) {
	if q == slowQuery {
		time.Sleep(*slowFor) // MARK:db-sleep the slow query
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &rows{cols: []string{"id", "value"}, data: [][]driver.Value{{int64(1), q}}}, nil
}

type rows struct {
	cols []string
	data [][]driver.Value
}

func (r *rows) Columns() []string { return r.cols }
func (r *rows) Close() error      { return nil }
func (r *rows) Next(dest []driver.Value) error {
	if len(r.data) == 0 {
		return io.EOF
	}
	copy(dest, r.data[0])
	r.data = r.data[1:]
	return nil
}

// ---- the service ----

var (
	db        *sql.DB
	orderReqs uint64 // per-endpoint counters, so that the id sequence of
	otherReqs uint64 // /api/orders does not depend on the mix of requests
)

// scanOne returns the second column of the first row and closes rows.
func scanOne(rows *sql.Rows) (string, error) {
	defer rows.Close()
	var id int64
	var v string
	for rows.Next() {
		if err := rows.Scan(&id, &v); err != nil {
			return "", err
		}
	}
	return v, rows.Err()
}

// loadOrder is GET /api/orders's database access; id 42 is the slow one.
//
//go:noinline
func loadOrder(ctx context.Context, id int) (string, error) {
	q := fmt.Sprintf("SELECT * FROM orders WHERE id = %d", id)
	rows, err := db.QueryContext(ctx, q) // MARK:where the sql client call
	if err != nil {
		return "", err
	}
	return scanOne(rows)
}

// loadUser is GET /api/users's database access; always fast.
//
//go:noinline
func loadUser(ctx context.Context, id int) (string, error) {
	q := fmt.Sprintf("SELECT name FROM users WHERE id = %d", id)
	rows, err := db.QueryContext(ctx, q) // MARK:users-query
	if err != nil {
		return "", err
	}
	return scanOne(rows)
}

func handler(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id, err := strconv.Atoi(r.URL.Query().Get("id"))
	if err != nil {
		ctr := &otherReqs
		if r.URL.Path == "/api/orders" {
			ctr = &orderReqs
		}
		id = 40 + int(atomic.AddUint64(ctr, 1)%20) // 40..59: id 42 one in 20
	}
	var v string
	switch r.URL.Path {
	case "/api/orders":
		v, err = loadOrder(r.Context(), id)
	case "/api/users":
		v, err = loadUser(r.Context(), id)
	case "/api/health":
		v = "ok"
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprintf(w, "{\"id\":%d,\"row\":%q}\n", id, v)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()

	sql.Register("fakedb", fakeDriver{})
	var err error
	if db, err = sql.Open("fakedb", "corpus"); err != nil {
		log.Fatal(err)
	}
	db.SetMaxIdleConns(64)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, http.HandlerFunc(handler)))
}

// pq: database/sql over github.com/lib/pq against a real PostgreSQL server (started by
// capture/tests/spans_e2e.rs). Runs known statements, one failing, and prints JSON facts:
// each statement, the goroutine that ran it and whether it failed.
//
// Usage: pq DSN. Build: GO111MODULE=off GOPATH=/usr/share/gocode (Debian's
// golang-github-lib-pq-dev).
package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	_ "github.com/lib/pq"
)

func goid() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	id, _ := strconv.ParseUint(strings.Fields(string(buf[:n]))[1], 10, 64)
	return id
}

type fact struct {
	Query string `json:"query"`
	Goid  uint64 `json:"goid"`
	Error bool   `json:"error"`
	Kind  string `json:"kind"`
}

func main() {
	db, err := sql.Open("postgres", os.Args[1])
	if err != nil {
		panic(err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		fmt.Fprintln(os.Stderr, "ping:", err)
		os.Exit(2)
	}
	var facts []fact
	exec := func(q string, args ...interface{}) {
		_, err := db.Exec(q, args...)
		facts = append(facts, fact{q, goid(), err != nil, "exec"})
	}
	query := func(q string, args ...interface{}) {
		rows, err := db.Query(q, args...)
		facts = append(facts, fact{q, goid(), err != nil, "query"})
		if err == nil {
			for rows.Next() {
			}
			rows.Close()
		}
	}
	exec("CREATE TABLE items (id int PRIMARY KEY, name text)")
	exec("INSERT INTO items VALUES (1, 'apple'), (2, 'pear')")
	query("SELECT name FROM items WHERE id = 2")
	query("SELECT name FROM items WHERE id = $1", 1)
	exec("UPDATE items SET name = $1 WHERE id = $2", "plum", 2)
	query("SELECT * FROM no_such_table")
	exec("INSERT INTO items VALUES (1, 'dup')")
	exec("DROP TABLE items")
	db.Close()
	out, _ := json.Marshal(map[string]interface{}{"sql": facts})
	fmt.Println(string(out))
}

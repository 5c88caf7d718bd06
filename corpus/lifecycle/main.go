// lifecycle: a precise test program (not a server). main.main creates exactly
// -n (100) goroutines with one go statement (MARK:go-worker); each worker
// blocks exactly once in each of, in order:
//  1. a chan receive   (MARK:recv)    - main closes the channel (waker: main)
//  2. sync.Mutex.Lock  (MARK:lock)    - main holds the lock, then unlocks; the
//     waiters are then woken one by one (by main, then by each other)
//     (wait reason "sync.Mutex.Lock"; "semacquire" before Go 1.20)
//  3. time.Sleep(1ms)  (MARK:sleep)   - wait reason "sleep", woken by a timer
//  4. a read syscall   (MARK:syscall) - on a blocking pipe (syscall.Pipe, not
//     os.Pipe, which would park in the netpoller); main writes one byte
//     per worker
//
// and then exits. Before releasing phases 1, 2 and 4, main polls the goroutine
// dump until every worker really is blocked there, so each block happens and
// lasts measurably. main waits for the workers with a sync.WaitGroup and
// prints the facts as one JSON object on stdout. With -wait it first waits for
// a newline on stdin or SIGUSR1 so a tracer can attach (this adds two helper
// goroutines: os/signal's loop and the stdin reader, not main.worker).
// Functions at documented locations are //go:noinline so that their frames
// exist whatever the compiler version inlines.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var (
	start = make(chan struct{})
	mu    sync.Mutex
	pipe  [2]int // blocking pipe: [0] read end, [1] write end
	sites struct{ Recv, Lock, Sleep, Syscall int }
)

// here returns the line it is called from.
func here() int { _, _, l, _ := runtime.Caller(1); return l }

//go:noinline
func worker(i int, wg *sync.WaitGroup) {
	defer wg.Done()
	if i == 0 { // record the lines of the four blocking statements once
		l := here()
		sites.Recv, sites.Lock, sites.Sleep, sites.Syscall = l+3, l+4, l+6, l+9
	}
	<-start   // MARK:recv
	mu.Lock() // MARK:lock
	mu.Unlock()
	time.Sleep(time.Millisecond) // MARK:sleep
	var b [1]byte
	for {
		n, err := syscall.Read(pipe[0], b[:]) // MARK:syscall
		if err == syscall.EINTR {
			continue
		}
		if n != 1 || err != nil {
			fail("worker %d: pipe read: n=%d err=%v", i, n, err)
		}
		break
	}
}

func fail(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "lifecycle: "+f+"\n", a...)
	os.Exit(1)
}

// waitBlocked polls the goroutine dump until n goroutines in main.worker are
// in a state starting with one of states; it returns their goroutine ids and
// the state string seen.
func waitBlocked(n int, states ...string) ([]int64, string) {
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := runtime.Stack(buf, true)
		if m == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		var ids []int64
		seen := ""
		for _, g := range bytes.Split(buf[:m], []byte("\n\n")) {
			if !bytes.Contains(g, []byte("\nmain.worker(")) {
				continue
			}
			// header: "goroutine 18 [chan receive]:" or "[..., 2 minutes]:"
			hdr := g[:bytes.IndexByte(g, '\n')]
			open := bytes.IndexByte(hdr, '[')
			for _, s := range states {
				if open > 0 && bytes.HasPrefix(hdr[open+1:], []byte(s)) {
					id, _ := strconv.ParseInt(string(bytes.TrimSpace(hdr[len("goroutine "):open])), 10, 64)
					ids = append(ids, id)
					seen = s
				}
			}
		}
		if len(ids) >= n {
			return ids, seen
		}
		if time.Now().After(deadline) {
			fail("timed out: %d of %d workers in %v", len(ids), n, states)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func goid() int64 {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	id, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return id
}

func waitForGo() {
	fmt.Fprintf(os.Stderr, "lifecycle: pid %d waiting: send a newline on stdin or SIGUSR1\n", os.Getpid())
	go_ := make(chan struct{}, 2)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		// At EOF (e.g. stdin is /dev/null) only SIGUSR1 can start us.
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err == nil {
			go_ <- struct{}{}
		}
	}()
	select {
	case <-sig:
	case <-go_:
	}
	signal.Stop(sig)
}

func main() {
	n := flag.Int("n", 100, "number of workers")
	wait := flag.Bool("wait", false, "wait for a newline on stdin or SIGUSR1 before starting")
	flag.Parse()
	if *wait {
		waitForGo()
	}
	if err := syscall.Pipe(pipe[:]); err != nil {
		fail("pipe: %v", err)
	}
	t0, before := time.Now(), runtime.NumGoroutine()
	released := map[string]int64{}

	mu.Lock() // held until every worker waits for it
	var wg sync.WaitGroup
	wg.Add(*n)
	goLine := here() + 2
	for i := 0; i < *n; i++ {
		go worker(i, &wg) // MARK:go-worker
	}

	ids, _ := waitBlocked(*n, "chan receive")
	released["chan_receive_unix_ns"] = time.Now().UnixNano()
	close(start)

	_, mutexState := waitBlocked(*n, "sync.Mutex.Lock", "semacquire")
	released["mutex_unix_ns"] = time.Now().UnixNano()
	mu.Unlock()

	waitBlocked(*n, "syscall")
	time.Sleep(10 * time.Millisecond) // let the reads reach the kernel and block
	released["pipe_unix_ns"] = time.Now().UnixNano()
	if w, err := syscall.Write(pipe[1], make([]byte, *n)); w != *n || err != nil {
		fail("pipe write: %d %v", w, err)
	}

	wg.Wait()
	// wg.Done runs before a worker's goroutine actually ends (goexit): wait until every
	// worker has gone, so a tracer sees all 100 exits before the process does.
	for runtime.NumGoroutine() > before {
		time.Sleep(time.Millisecond)
	}
	out, _ := json.Marshal(map[string]interface{}{
		"pid":               os.Getpid(),
		"go_version":        runtime.Version(),
		"main_goid":         goid(),
		"workers":           *n,
		"workers_exited":    *n,
		"worker_goids":      ids,
		"start_function":    "main.worker",
		"creation_site":     fmt.Sprintf("main.main (main.go:%d)", goLine),
		"go_statement_line": goLine,
		"blocks_per_worker": map[string]int{"chan receive": 1, mutexState: 1, "sleep": 1, "syscall": 1},
		"wait_reasons":      map[string]string{"chan": "chan receive", "mutex": mutexState, "sleep": "sleep"},
		"lines": map[string]int{"chan_receive": sites.Recv, "mutex_lock": sites.Lock,
			"sleep": sites.Sleep, "syscall": sites.Syscall},
		"start_unix_ns": t0.UnixNano(),
		"released":      released,
		"elapsed_ns":    time.Since(t0).Nanoseconds(),
	})
	fmt.Println(string(out))
}

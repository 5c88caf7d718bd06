// lifecycle: a deterministic goroutine workload for gcap's probe tests (standard library only).
//
// It prints "ready", waits for a line on stdin (so probes can attach first), then main.main
// starts one coordinator and exactly N workers with `go worker()`. Each worker, in order:
//   1. blocks on a channel receive, woken by the coordinator's send;
//   2. blocks on sync.Mutex (held by the coordinator), woken by an Unlock (the
//      coordinator's or another worker's);
//   3. blocks in time.Sleep, woken by a timer;
//   4. blocks reading an empty os.Pipe (IO wait), woken by the netpoller;
//   5. makes one blocking read(2) on a raw pipe (a syscall, data already there);
// then exits. Automatic GC is off (see main). The coordinator only wakes a phase once runtime.Stack shows every worker
// parked in it, so each worker parks exactly once per phase. Finally main runs a GC.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const N = 100

var (
	start [N]chan struct{}
	pr    [N]*os.File // netpoll pipes: read ends
	pw    [N]*os.File
	raw   [N][2]int // blocking pipes
	mu    sync.Mutex
	next  int32
	done  sync.WaitGroup
)

func worker() {
	i := atomic.AddInt32(&next, 1) - 1
	<-start[i]
	mu.Lock()
	mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	var b [1]byte
	if _, err := pr[i].Read(b[:]); err != nil {
		panic(err)
	}
	if _, err := syscall.Read(raw[i][0], b[:]); err != nil {
		panic(err)
	}
	done.Done()
}

var stackBuf = make([]byte, 4<<20)

// waitParked polls until n worker goroutines are parked with one of the given wait reasons.
func waitParked(n int, reasons ...string) {
	buf := stackBuf
	for {
		k := runtime.Stack(buf, true)
		c := 0
		for _, g := range strings.Split(string(buf[:k]), "\n\n") {
			if !strings.Contains(g, "main.worker(") {
				continue
			}
			head := g
			if j := strings.IndexByte(g, '\n'); j >= 0 {
				head = g[:j]
			}
			for _, r := range reasons {
				if strings.Contains(head, "["+r) {
					c++
					break
				}
			}
		}
		if c >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func coordinator() {
	mu.Lock()
	waitParked(N, "chan receive")
	for i := range start {
		start[i] <- struct{}{}
	}
	// 1.19 reports a contended mutex as "semacquire", later versions as "sync.Mutex.Lock".
	waitParked(N, "sync.Mutex.Lock", "semacquire")
	mu.Unlock()
	waitParked(N, "IO wait")
	for i := range pw {
		if _, err := pw[i].Write([]byte{1}); err != nil {
			panic(err)
		}
	}
}

func main() {
	// No automatic GC: a GC started by an allocation can park a worker on the GC's own
	// semaphores and make the block counts depend on timing. main's runtime.GC() at the
	// end still runs one full cycle.
	debug.SetGCPercent(-1)
	for i := 0; i < N; i++ {
		start[i] = make(chan struct{})
		r, w, err := os.Pipe()
		if err != nil {
			panic(err)
		}
		pr[i], pw[i] = r, w
		if err := syscall.Pipe(raw[i][:]); err != nil {
			panic(err)
		}
		if _, err := syscall.Write(raw[i][1], []byte{1}); err != nil {
			panic(err)
		}
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		panic(err)
	}
	done.Add(N)
	go coordinator()
	for i := 0; i < N; i++ {
		go worker()
	}
	done.Wait()
	runtime.GC()
	fmt.Println("done")
}

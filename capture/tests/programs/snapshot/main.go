// snapshot is the target of the goroutine snapshot tests (capture/tests/snapshot_e2e.rs).
//
//	snapshot park N   parks N goroutines in main.parkedWorker on a channel, prints
//	                  "parked N" and what runtime.Stack says of one of them, then waits
//	                  for stdin to close (or a line) and releases them.
//	snapshot busy     creates and ends goroutines without pause (some park briefly on a
//	                  channel, some sleep, some grow their stacks) until stdin closes,
//	                  then prints "busy done".
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

var release = make(chan struct{})

// parkedWorker waits on a channel that is only closed at the end. Not inlined, so that it
// is the start function (not inside the `go` statement's wrapper).
//
//go:noinline
func parkedWorker(wg *sync.WaitGroup) {
	wg.Done()
	<-release
}

func spawn(n int) {
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go parkedWorker(&wg) // creation site
	}
	wg.Wait()
}

func park(n int) {
	spawn(n)
	// Let every worker reach its receive.
	for {
		buf := make([]byte, 64<<20)
		all := string(buf[:runtime.Stack(buf, true)])
		if strings.Count(all, "main.parkedWorker(") >= n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A GC cycle sets g.waitsince of every waiting goroutine.
	runtime.GC()
	buf := make([]byte, 64<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(g, "main.parkedWorker(") {
			fmt.Printf("one:\n%s\n", g)
			break
		}
	}
	fmt.Printf("parked %d goroutines %d\n", n, runtime.NumGoroutine())
	bufio.NewReader(os.Stdin).ReadString('\n')
	close(release)
}

//go:noinline
func deep(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + int(pad[n%64])
}

func busy() {
	stop := make(chan struct{})
	go func() {
		bufio.NewReader(os.Stdin).ReadString('\n')
		close(stop)
	}()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ping := make(chan int)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var inner sync.WaitGroup
				for k := 0; k < 32; k++ {
					inner.Add(1)
					switch k % 4 {
					case 0:
						go func() { defer inner.Done(); <-ping }()
					case 1:
						go func() { defer inner.Done(); ping <- 1 }()
					case 2:
						go func() { defer inner.Done(); time.Sleep(50 * time.Microsecond) }()
					default:
						go func(d int) { defer inner.Done(); deep(d) }(i%200 + k)
					}
				}
				inner.Wait()
			}
		}(w)
	}
	wg.Wait()
	fmt.Println("busy done")
}

func main() {
	switch {
	case len(os.Args) == 3 && os.Args[1] == "park":
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			panic(err)
		}
		park(n)
	case len(os.Args) == 2 && os.Args[1] == "busy":
		busy()
	default:
		fmt.Fprintln(os.Stderr, "usage: snapshot park N | snapshot busy")
		os.Exit(2)
	}
}

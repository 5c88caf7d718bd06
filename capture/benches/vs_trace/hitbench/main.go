// hitbench [-wait] [-n N]: calls main.hit N times and prints one JSON line {"n":N,"ns_per_call":X}.
// scripts/bench-vs-trace.sh puts a uprobe on main.hit's first instruction (the stack-check
// CMPQ, which x86 uprobes single-step) or on its PUSHQ BP (which the kernel emulates) and
// compares ns per call with none: the cost of one uprobe hit at each site.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

// The probe is counted on the main thread only: keep the main goroutine there.
func init() { runtime.LockOSThread() }

var sink int

//go:noinline
func leaf(i int) int { return i*7 + 1 }

// hit has a frame (it calls leaf), so it starts with the stack check and PUSHQ BP.
//
//go:noinline
func hit(i int) { sink += leaf(i) }

func main() {
	n := flag.Int("n", 200000, "calls")
	wait := flag.Bool("wait", false, "read a line from stdin before starting (so a probe can be attached)")
	flag.Parse()
	if *wait {
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	start := time.Now()
	for i := 0; i < *n; i++ {
		hit(i)
	}
	el := time.Since(start)
	fmt.Printf("{\"n\":%d,\"ns_per_call\":%.1f}\n", *n, float64(el.Nanoseconds())/float64(*n))
}

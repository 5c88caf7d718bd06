// probebench: runtime operations in a tight loop, so that gcap's cost per probe hit can be
// measured as (time per op with gcap - time per op without) / (probe hits per op).
//
//	probebench -mode M -n N [-wait] [-hold] [-rate R -secs S]
//
// Modes: gosched (runtime.Gosched: preempt + start), chan (unbuffered ping-pong between two
// goroutines: park, ready, start), spawn (go f(); wg.Wait: create, start, exit), mutex
// (two goroutines contending on a sync.Mutex), syscall (write to /dev/null: syscall enter/exit).
// With -rate it does R chan round trips per second for S seconds (a fixed event rate).
// It prints one JSON line: {"mode":..,"n":..,"ns_per_op":..}. With -wait it reads one line
// from stdin before starting, so a tracer can attach first; with -hold it reads another one
// before exiting, so the tracer can read its counters while the process is still there.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func main() {
	mode := flag.String("mode", "chan", "gosched|chan|spawn|mutex|syscall")
	n := flag.Int("n", 200000, "operations")
	wait := flag.Bool("wait", false, "wait for a line on stdin before starting")
	hold := flag.Bool("hold", false, "wait for a line on stdin before exiting")
	rate := flag.Int("rate", 0, "chan round trips per second (fixed-rate mode)")
	secs := flag.Int("secs", 10, "seconds of fixed-rate mode")
	flag.Parse()
	stdin := bufio.NewReader(os.Stdin)
	if *wait {
		stdin.ReadString('\n')
	}
	start := time.Now()
	ops := *n
	switch {
	case *rate > 0:
		ops = fixedRate(*rate, *secs)
	case *mode == "gosched":
		for i := 0; i < *n; i++ {
			runtime.Gosched()
		}
	case *mode == "chan":
		pingPong(*n)
	case *mode == "spawn":
		var wg sync.WaitGroup
		for i := 0; i < *n; i++ {
			wg.Add(1)
			go func() { wg.Done() }()
			wg.Wait()
		}
	case *mode == "mutex":
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < *n/2; i++ {
					mu.Lock()
					runtime.Gosched() // hold it across a yield so the other one parks
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	case *mode == "syscall":
		// A write to /dev/null goes through syscall.Syscall (entersyscall/exitsyscall);
		// Getpid would be a raw syscall the runtime does not announce.
		null, err := syscall.Open("/dev/null", syscall.O_WRONLY, 0)
		if err != nil {
			panic(err)
		}
		buf := []byte{0}
		for i := 0; i < *n; i++ {
			syscall.Write(null, buf)
		}
	default:
		fmt.Fprintln(os.Stderr, "unknown mode", *mode)
		os.Exit(2)
	}
	el := time.Since(start)
	fmt.Printf("{\"mode\":%q,\"n\":%d,\"ns_per_op\":%.1f}\n", *mode, ops, float64(el.Nanoseconds())/float64(ops))
	if *hold {
		stdin.ReadString('\n')
	}
}

func pingPong(n int) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	for i := 0; i < n; i++ {
		ping <- i
		<-pong
	}
	close(ping)
}

func fixedRate(rate, secs int) int {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := rate / 100
	done := 0
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for time.Now().Before(deadline) {
		<-tick.C
		for i := 0; i < perTick; i++ {
			ping <- i
			<-pong
			done++
		}
	}
	return done
}

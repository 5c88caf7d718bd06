// stress: a hostile workload for a tracer. It starts -n goroutines (100k by default) in
// batches, each of which recurses -depth frames with a large frame so that its stack grows
// (and is copied) many times, blocks on a channel and exits. It prints a checksum that only
// depends on its flags, so a run under gcap can be compared with a run without. With -for D
// it does that again and again until D has passed, printing the same line after each round.
//
// Standard library only; builds with Go 1.19 and later.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"time"
)

//go:noinline
func deep(n int, seed uint64) uint64 {
	var pad [256]uint64 // ~2 KiB per frame: forces repeated stack growth
	pad[n%256] = seed
	if n == 0 {
		return seed ^ pad[0]
	}
	return deep(n-1, seed*6364136223846793005+1442695040888963407) + pad[n%256]%7
}

func main() {
	n := flag.Int("n", 100000, "goroutines to start")
	depth := flag.Int("depth", 200, "recursion depth of each goroutine")
	batch := flag.Int("batch", 2000, "goroutines alive at once")
	repeat := flag.Duration("for", 0, "repeat the rounds until this long has passed")
	flag.Parse()

	began := time.Now()
	for {
		round(*n, *depth, *batch)
		if time.Since(began) >= *repeat {
			break
		}
	}
	os.Exit(0)
}

func round(n, depth, batch int) {
	var total uint64
	var mu sync.Mutex
	for start := 0; start < n; start += batch {
		var wg sync.WaitGroup
		gate := make(chan struct{})
		end := start + batch
		if end > n {
			end = n
		}
		for i := start; i < end; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-gate
				v := deep(depth, uint64(i))
				mu.Lock()
				total += v
				mu.Unlock()
			}(i)
		}
		close(gate)
		wg.Wait()
	}
	fmt.Printf("goroutines=%d depth=%d checksum=%d\n", n, depth, total)
}

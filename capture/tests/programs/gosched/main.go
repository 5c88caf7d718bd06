// gosched: measures the cost gcap's probes add to a scheduler round trip.
//
// Prints "ready", waits for a line on stdin, then calls runtime.Gosched() N times on one
// goroutine (GOMAXPROCS=1, nothing else runnable) and prints the nanoseconds per call.
// Each call passes runtime.goschedImpl and runtime.execute once: two probe hits.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	runtime.GOMAXPROCS(1)
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		panic(err)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		panic(err)
	}
	t := time.Now()
	for i := 0; i < n; i++ {
		runtime.Gosched()
	}
	fmt.Println(time.Since(t).Nanoseconds() / int64(n))
}

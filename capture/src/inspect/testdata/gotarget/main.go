// Test target for gcap's inspect module: goroutines, a channel, a mutex,
// time.Sleep and a net/http server with one handler and one client call.
// Standard library only so every toolchain from go1.19 builds it offline.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

var (
	mu    sync.Mutex
	total int
)

func worker(id int, ch <-chan int, wg *sync.WaitGroup) {
	defer wg.Done()
	for v := range ch {
		mu.Lock()
		total += v * id
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}
}

func handler(w http.ResponseWriter, r *http.Request) {
	mu.Lock()
	t := total
	mu.Unlock()
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "%s %d\n", r.URL.Path, t)
}

func main() {
	rounds := 1
	if len(os.Args) > 1 {
		fmt.Sscan(os.Args[1], &rounds)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	http.HandleFunc("/work", handler)
	go http.Serve(ln, nil)

	for r := 0; r < rounds; r++ {
		ch := make(chan int)
		var wg sync.WaitGroup
		for i := 1; i <= 4; i++ {
			wg.Add(1)
			go worker(i, ch, &wg)
		}
		for v := 0; v < 20; v++ {
			ch <- v
		}
		close(ch)
		wg.Wait()
		resp, err := http.Get("http://" + ln.Addr().String() + "/work?round=1")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	fmt.Println("total", total)
}

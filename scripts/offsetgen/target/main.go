// Target for offsetgen: links the runtime, channels, sync and the net/http server and
// client so their types are in the binary's DWARF. It is never run by gen-offsets.sh.
package main

import (
	"fmt"
	"net/http"
	"os"
	"sync"
)

func main() {
	var mu sync.Mutex
	ch := make(chan int)
	go func() { mu.Lock(); ch <- 1; mu.Unlock() }()
	<-ch
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, r.URL.Path)
	})
	if len(os.Args) > 1 {
		resp, err := http.Get(os.Args[1])
		if err == nil {
			fmt.Println(resp.StatusCode)
		}
		fmt.Println(http.ListenAndServe("127.0.0.1:0", nil))
	}
}

// execer: runs goroutines for a moment, then replaces itself with /bin/sleep (exec), as a
// service re-exec'ing itself on upgrade would. Standard library only.
package main

import (
	"os"
	"sync"
	"syscall"
	"time"
)

func main() {
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(time.Millisecond) }()
	}
	wg.Wait()
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Exec("/bin/sleep", []string{"sleep", "10"}, os.Environ()); err != nil {
		panic(err)
	}
}

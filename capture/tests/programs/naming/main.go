// naming: goroutines started by every shape of `go` statement, each printing its own
// traceback (runtime.Stack), so a test can compare the names gcap records with Go's.
//
// Each goroutine prints "=== KIND" and its traceback, then exits. Shapes:
//   - inlined: `go f(x)`, f small enough to be inlined into the compiler's go wrapper;
//   - called: the same with f not inlined (the wrapper calls it);
//   - method: `go obj.method(x)`;
//   - value: `go m(x)` with m a method value (the wrapper calls through a func value);
//   - closure: `go func() {...}()` (no wrapper: the closure is the goroutine's function);
//   - closure-args: `go func(a int) {...}(x)` (a wrapper around the closure);
//   - plain: `go plain()` (no wrapper);
//   - nested: `go f(x)` inside a closure (its wrapper is main.main.func3.gowrap1 from 1.22).
package main

import (
	"fmt"
	"runtime"
	"sync"
)

var (
	wg sync.WaitGroup
	mu sync.Mutex
)

// record prints the calling goroutine's traceback as Go prints it.
//
//go:noinline
func record(kind string) {
	buf := make([]byte, 1<<16)
	n := runtime.Stack(buf, false)
	mu.Lock()
	fmt.Printf("=== %s\n%s\n", kind, buf[:n])
	mu.Unlock()
	wg.Done()
}

// inlined is small enough to be inlined into its go wrapper.
func inlined(kind string) { record(kind) }

//go:noinline
func called(kind string) { record(kind) }

type worker struct{ kind string }

func (w *worker) method(suffix string) { record(w.kind + suffix) }

func (w *worker) value(suffix string) { record(w.kind + suffix) }

func plain() { record("plain") }

func main() {
	wg.Add(8)
	go inlined("inlined")
	go called("called")
	w := &worker{kind: "meth"}
	go w.method("od")
	v := &worker{kind: "val"}
	m := v.value
	go m("ue")
	go func() { record("closure") }()
	go func(kind string) { record(kind) }("closure-args")
	go plain()
	go func() {
		go inlined("nested")
	}()
	wg.Wait()
}

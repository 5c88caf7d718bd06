// Package http2 looks like an HTTP/2 server to gcap (a `(*serverConn).runHandler` in a
// package whose path ends in "http2") but has no `handlerDone`: gcap cannot find where its
// handlers end, so it must end server spans at serverHandler.ServeHTTP's RETs.
package http2

type serverConn struct{ n int }

//go:noinline
func (sc *serverConn) runHandler(f func()) {
	defer func() { sc.n++ }()
	f()
}

// Run calls f the way a server would run a handler.
func Run(f func()) int {
	sc := &serverConn{}
	sc.runHandler(f)
	return sc.n
}

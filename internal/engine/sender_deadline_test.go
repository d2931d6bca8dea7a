package engine

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// A sender connection puts the write deadline on the socket only before
// a write that may wait: a write the socket takes whole leaves it off; a
// write that cannot finish still ends at the deadline asked for; and a
// deadline that passed on the socket does not fail a later write made
// under a new one.
func TestSenderConnWriteDeadline(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	cs := connSet{m: map[*trackedConn]struct{}{}}
	c, err := cs.dial(&net.Dialer{}, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-accepted
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	tc := c.(*trackedConn)
	if tc.raw == nil {
		t.Fatal("a TCP connection has no raw connection")
	}

	small := []byte("POST / HTTP/1.1\r\n\r\n")
	if err := tc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := tc.Write(small); n != len(small) || err != nil {
		t.Fatalf("small write: %d, %v", n, err)
	}
	if tc.wdlSet {
		t.Error("a write the socket took whole put the deadline on the socket")
	}

	// The receiver reads nothing: a large write fills the socket's
	// buffers (more than loopback's send and receive buffers hold) and
	// must end at its deadline — without one it would block for ever.
	// The payload is built first: at load, under the race detector,
	// filling it takes seconds that are not the write's.
	large := bytes.Repeat([]byte("x"), 32<<20)
	if err := tc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := tc.Write(large)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("large write to a receiver that does not read: %d bytes, %v; want a timeout", n, err)
	}
	if took := time.Since(start); took > time.Minute { // a failure bound, not a measurement
		t.Errorf("the write took %v past a 100 ms deadline", took)
	}

	// The receiver reads again; the passed deadline is still on the
	// socket, and a write under a new deadline must not fail for it.
	drained := make(chan int64, 1)
	go func() {
		n, _ := io.Copy(io.Discard, sc)
		drained <- n
	}()
	if err := tc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m, err := tc.Write(small); m != len(small) || err != nil {
		t.Fatalf("write after a passed deadline: %d, %v", m, err)
	}
	tc.Close()
	if got, want := <-drained, int64(len(small)+n+len(small)); got != want {
		t.Errorf("receiver read %d bytes, want %d", got, want)
	}
}

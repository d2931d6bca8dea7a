package rawio_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/rawio"
)

// pair returns both ends of a loopback TCP connection, closed at the end.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
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
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

func newWriter(t *testing.T, c net.Conn) *rawio.Writer {
	t.Helper()
	w := rawio.NewWriter(c)
	if w == nil {
		if !rawio.Supported {
			t.Skip("no raw socket writes on this system")
		}
		t.Fatal("NewWriter of a TCP connection is nil")
	}
	return w
}

// TestWriterWritesAll writes more than the socket buffers hold, so the
// writer takes partial writes and waits for room as net.Conn.Write does.
func TestWriterWritesAll(t *testing.T) {
	c, s := pair(t)
	w := newWriter(t, c)
	want := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(s)
		got <- b
	}()
	for _, part := range [][]byte{want[:10], want[10 : 1<<20], want[1<<20:]} {
		if n, err := w.Write(part); err != nil || n != len(part) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(part), n, err)
		}
	}
	if n, err := w.Write(nil); n != 0 || err != nil {
		t.Fatalf("Write(nil) = %d, %v", n, err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("peer read %d bytes, want the %d written", len(b), len(want))
	}
}

// TestWriterDeadline: a peer that does not read leaves the writer waiting
// for room until the connection's write deadline, and no longer.
func TestWriterDeadline(t *testing.T) {
	c, _ := pair(t)
	w := newWriter(t, c)
	if err := c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<20)
	n, err := w.Write(big)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write to a peer that does not read = %d, %v; want the deadline's error", n, err)
	}
	if n <= 0 || n >= len(big) {
		t.Fatalf("wrote %d of %d bytes before the deadline", n, len(big))
	}
}

// TestWriterErrors: a closed connection and a peer that reset it are
// errors, as they are for net.Conn.Write.
func TestWriterErrors(t *testing.T) {
	c, s := pair(t)
	w := newWriter(t, c)
	_ = s.(*net.TCPConn).SetLinger(0)
	_ = s.Close() // reset
	// The reset arrives asynchronously; writes fail once it has.
	if err := c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 1000 {
		if _, err = w.Write([]byte("x")); err != nil {
			break
		}
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	_ = c.Close()
	if _, err := w.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

// TestNewWriterOnlySockets: a connection that is not a socket gets no
// Writer (the caller writes through it).
func TestNewWriterOnlySockets(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if w := rawio.NewWriter(a); w != nil {
		t.Fatal("NewWriter of net.Pipe is not nil")
	}
}

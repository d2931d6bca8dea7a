//go:build linux

package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// threadIO returns a reader of the read and write system calls the
// thread tid has made (/proc/self/task/TID/io), each count taken by one
// read system call, counted by the next.
func threadIO(t *testing.T, tid int) func() (reads, writes int64) {
	t.Helper()
	f, err := os.Open("/proc/self/task/" + strconv.Itoa(tid) + "/io")
	if err != nil {
		t.Skipf("no per-thread I/O accounting: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	buf := make([]byte, 4096)
	return func() (reads, writes int64) {
		_ = raw.Read(func(fd uintptr) bool {
			n, err = syscall.Pread(int(fd), buf, 0)
			return true
		})
		if err != nil {
			t.Error(err)
		}
		for _, line := range bytes.Split(buf[:max(n, 0)], []byte("\n")) {
			k, v, _ := bytes.Cut(line, []byte(": "))
			c, _ := strconv.ParseInt(string(v), 10, 64)
			switch string(k) {
			case "syscr":
				reads = c
			case "syscw":
				writes = c
			}
		}
		return reads, writes
	}
}

// threadSleeping reports whether the thread tid is asleep (state S).
func threadSleeping(tid int) bool {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'S'
}

// An attempt on a kept-alive connection costs one write and one read
// system call: the sender waits for the answer without first trying a
// read that cannot find it (the receiver answers only once the sender
// waits). The attempt runs on a thread of its own, so the thread's I/O
// counters are the attempt's.
func TestSenderReadsOnlyTheAnswer(t *testing.T) {
	t.Parallel()
	entered := make(chan struct{}, 1)
	answer := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			entered <- struct{}{}
			<-answer
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s := devSender(t, SenderConfig{})

	type counts struct{ reads, writes int64 }
	got := make(chan counts, 1)
	tidc := make(chan int, 1)
	ioc := make(chan func() (int64, int64), 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid := syscall.Gettid()
		// A first attempt opens the connection.
		if res := s.Send(context.Background(), Request{URI: srv.URL + "/", Body: []byte("{}")}); res.StatusCode != 204 {
			t.Errorf("first attempt: %d %s", res.StatusCode, res.Err)
		}
		tidc <- tid
		count := <-ioc
		r0, w0 := count()
		res := s.Send(context.Background(), Request{URI: srv.URL + "/wait", Body: []byte("{}")})
		r1, w1 := count()
		if res.StatusCode != 204 {
			t.Errorf("second attempt: %d %s", res.StatusCode, res.Err)
		}
		got <- counts{r1 - r0 - 1, w1 - w0} // less the pread of r0
	}()
	tid := <-tidc
	ioc <- threadIO(t, tid)
	<-entered // the request is written
	deadline := time.Now().Add(waitLimit)
	for !threadSleeping(tid) { // the sender waits for the answer
		if time.Now().After(deadline) {
			answer <- struct{}{}
			t.Fatal("the attempt's thread never waited")
		}
		runtime.Gosched()
	}
	answer <- struct{}{}
	c := <-got
	if c.writes != 1 || c.reads != 1 {
		t.Errorf("the attempt made %d write and %d read system calls, want 1 and 1", c.writes, c.reads)
	}
}

// Requests of every size reach the receiver whole, on a kept-alive
// connection: those held back until the answer is read (up to heldMax)
// and larger ones, written at once.
func TestSenderBodySizes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("Body-Digest", hex.EncodeToString(sum[:]))
		_, _ = w.Write(sum[:4])
	}))
	defer srv.Close()
	s := devSender(t, SenderConfig{})
	for _, n := range []int{2, 1000, heldMax - 300, heldMax, heldMax + 1, 1 << 20, 100} {
		body := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		sum := sha256.Sum256(body)
		res := s.Send(context.Background(), Request{URI: srv.URL, Body: body})
		if res.StatusCode != 200 || !bytes.Equal(res.Response, sum[:4]) {
			t.Errorf("%d bytes: status %d (%s), response %x, want 200 and %x", n, res.StatusCode, res.Err, res.Response, sum[:4])
		}
	}
}

// A receiver that accepts a request and never reads it times out like
// one that never answers: a request too large to be held back is written
// within the attempt's deadline.
func TestSenderTimesOutAReceiverThatDoesNotRead(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c // held open, never read
		}
	}()
	defer func() {
		ln.Close()
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	}()
	s := devSender(t, SenderConfig{AttemptTimeout: 300 * time.Millisecond})
	body := make([]byte, 64<<20) // more than both sockets' buffers hold
	start := time.Now()
	res := s.Send(context.Background(), Request{URI: "http://" + ln.Addr().String() + "/", Body: body})
	if k := failureKind(t, res); k != core.FailTimeout {
		t.Errorf("kind %v (%s), want timeout", k, res.Err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the attempt took %v, its deadline was 300 ms", d)
	}
}

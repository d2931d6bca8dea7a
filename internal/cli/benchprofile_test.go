package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `bench --cpuprofile` profiles what it measures: each serve child starts
// profiling when the bench asks, after its start-up, the webhooks'
// creation and the warm-up, and its file is written once the last
// measured delivery has arrived, before the bench reports.
func TestBenchProfilesTheMeasuredPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	if profileStartSignal == nil {
		t.Skip("serve children are told by SIGUSR1 and SIGUSR2")
	}
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	c := benchConfig{Events: 500, Webhooks: 2, Size: 600, Concurrency: 4, Batch: 50, Workers: 512, PerDest: 32,
		Timeout: 5 * time.Minute, Rounds: 1, Instances: 1, LogLevel: "error", CPUProfile: path}
	var errb bytes.Buffer
	rep, err := bench(context.Background(), c, Env{Getenv: func(string) string { return "" }, Stdout: io.Discard, Stderr: &errb})
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	p, err := readProfile(path)
	if err != nil {
		t.Fatal(err)
	}
	w := rep.window
	start, end := time.Unix(0, p.timeNanos), time.Unix(0, p.timeNanos+p.durationNanos)
	// The child's wall clock is the bench's: one machine.
	if start.Before(w.asked) {
		t.Errorf("the profile began %v before the bench asked for it: start-up and set-up are in it", w.asked.Sub(start))
	}
	if end.Before(w.to) || end.After(w.written) {
		t.Errorf("the profile ended at %v, outside [%v, %v] (the last delivery received, the file acknowledged)", end, w.to, w.written)
	}
	if p.samples == 0 {
		t.Errorf("no samples in a profile of %d deliveries", rep.Deliveries)
	}
	for _, s := range p.strings {
		if strings.Contains(s, "NewServer") || strings.Contains(s, "rsa.GenerateKey") {
			t.Errorf("a start-up frame in the profile: %s", s)
		}
	}
}

// pprofSummary is what the test reads of a profile.proto.
type pprofSummary struct {
	timeNanos, durationNanos int64
	samples                  int
	strings                  []string
}

// readProfile decodes the top level of a gzipped profile.proto: its
// samples (field 2), string table (6), time_nanos (9) and duration_nanos
// (10). The runtime names only functions that some sample has.
func readProfile(path string) (pprofSummary, error) {
	var p pprofSummary
	f, err := os.Open(path)
	if err != nil {
		return p, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return p, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return p, err
	}
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return p, errors.New("profile: bad key")
		}
		b = b[n:]
		field, wire := key>>3, key&7
		switch wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return p, errors.New("profile: bad varint")
			}
			b = b[n:]
			switch field {
			case 9:
				p.timeNanos = int64(v)
			case 10:
				p.durationNanos = int64(v)
			}
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return p, errors.New("profile: bad length")
			}
			v := b[n : n+int(l)]
			b = b[n+int(l):]
			switch field {
			case 2:
				p.samples++
			case 6:
				p.strings = append(p.strings, string(v))
			}
		default:
			return p, errors.New("profile: unexpected wire type")
		}
	}
	return p, nil
}

// `serve --cpuprofile-on-signal` profiles from SIGUSR1 to SIGUSR2 and says
// so on stdout; signals out of turn are logged and ignored (the process
// lives on), and a profile still running at shutdown is written then.
func TestServeProfilesOnSignal(t *testing.T) {
	if profileStartSignal == nil {
		t.Skip("no SIGUSR1 and SIGUSR2 here")
	}
	if code, _, errs := run(t, nil, "serve", "--cpuprofile-on-signal"); code != 2 || !strings.Contains(errs, "--cpuprofile-on-signal needs --cpuprofile") {
		t.Fatalf("--cpuprofile-on-signal alone: %d %q", code, errs)
	}
	// Not parallel: the signals go to this process, whose other tests
	// must not be serving with --cpuprofile-on-signal meanwhile.
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	send := func(sig os.Signal) {
		if err := self.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	var before pprofSummary
	out, errs := serveArgsUntilReadyOut(t, nil, func(url string, out, errs *syncBuffer) {
		send(profileStopSignal) // out of turn
		waitForCount(t, errs, "cpuprofile.signal_ignored", 1)
		send(profileStartSignal)
		waitForCount(t, out, "cpu profile started", 1)
		send(profileStartSignal) // out of turn
		waitForCount(t, errs, "cpuprofile.signal_ignored", 2)
		send(profileStopSignal)
		waitForCount(t, out, "cpu profile written to "+path, 1)
		if before, err = readProfile(path); err != nil {
			t.Fatalf("the profile acknowledged as written: %v", err)
		}
		send(profileStartSignal) // after the file is written
		waitForCount(t, errs, "cpuprofile.signal_ignored", 3)
	}, "--data-dir", filepath.Join(dir, "a"), "--cpuprofile", path, "--cpuprofile-on-signal")
	if strings.Count(out, "cpu profile started") != 1 {
		t.Errorf("stdout: %s", out)
	}
	if after, err := readProfile(path); err != nil || after.timeNanos != before.timeNanos {
		t.Errorf("the profile was rewritten at shutdown (%v): %+v, then %+v; stderr %s", err, before, after, errs)
	}

	// Started and never stopped: written at shutdown.
	path2 := filepath.Join(dir, "cpu2.pprof")
	serveArgsUntilReadyOut(t, nil, func(url string, out, errs *syncBuffer) {
		send(profileStartSignal)
		waitForCount(t, out, "cpu profile started", 1)
	}, "--data-dir", filepath.Join(dir, "b"), "--cpuprofile", path2, "--cpuprofile-on-signal")
	if p, err := readProfile(path2); err != nil || p.timeNanos == 0 {
		t.Errorf("a profile running at shutdown: %v %+v", err, p)
	}
}

// serveArgsUntilReadyOut is serveArgsUntilReady whose fn also sees the
// server's stdout and stderr as they are written.
func serveArgsUntilReadyOut(t *testing.T, env map[string]string, fn func(url string, out, errs *syncBuffer), args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...),
			Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errb})
	}()
	select {
	case code := <-done:
		t.Fatalf("serve exited with %d before listening: %s %s", code, out.String(), errb.String())
	case <-untilCount(&out, " listening on ", 1):
	}
	if !strings.Contains(out.String(), " listening on ") {
		t.Fatalf("serve did not listen: %s", errb.String())
	}
	fn(listeningLine.FindStringSubmatch(out.String())[1], &out, &errb)
	cancel()
	<-done
	return out.String(), errb.String()
}

// waitForCount waits until b holds s n times.
func waitForCount(t *testing.T, b *syncBuffer, s string, n int) {
	t.Helper()
	<-untilCount(b, s, n)
	if strings.Count(b.String(), s) < n {
		t.Fatalf("%q did not appear %d times: %s", s, n, b.String())
	}
}

// untilCount is closed once b holds s n times (b is polled: a server's
// output has no other signal).
func untilCount(b *syncBuffer, s string, n int) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for end := time.Now().Add(2 * time.Minute); strings.Count(b.String(), s) < n && time.Now().Before(end); {
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return ch
}

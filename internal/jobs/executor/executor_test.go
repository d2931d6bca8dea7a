package executor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/clocktest"
	"github.com/longhook/longhook/internal/core"
)

func TestParseDurations(t *testing.T) {
	t.Parallel()
	d, err := ParseDurations("batch=2s, video=1m")
	if err != nil || d[core.JobBatch] != 2*time.Second || d[core.JobVideo] != time.Minute || d[core.JobInteraction] != 0 {
		t.Fatalf("%v %v", d, err)
	}
	if d, err := ParseDurations("3s"); err != nil || d[core.JobInteraction] != 3*time.Second {
		t.Fatalf("%v %v", d, err)
	}
	for _, bad := range []string{"batch", "batch=x", "robot=1s", "batch=-1s"} {
		if _, err := ParseDurations(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := New(Config{Kind: "quantum"}); err == nil {
		t.Error("unknown executor accepted")
	}
	if _, err := New(Config{Kind: "openai"}); err == nil {
		t.Error("openai without a URL accepted")
	}
	if _, err := New(Config{Kind: "openai", OpenAI: OpenAIConfig{URL: "http://x"}, VideoCommand: "/bin/true a"}); err != nil {
		t.Error(err)
	}
}

// The simulator takes its configured (scaled) time on the clock, answers
// deterministically and honours its markers.
func TestSimulator(t *testing.T) {
	t.Parallel()
	clock := clocktest.New(time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC))
	sim := NewSimulator(SimulatorConfig{Clock: clock, Scale: 60, Durations: map[core.JobKind]time.Duration{core.JobInteraction: time.Hour}})
	turn := &Turn{Kind: core.JobInteraction, Contents: []Content{{Role: "user", Parts: []Part{{Text: "hello"}}}}}
	done := make(chan *Reply, 1)
	go func() {
		r, err := sim.Generate(context.Background(), turn)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	var r *Reply
	deadline := time.After(10 * time.Second)
	for r == nil {
		clock.Advance(time.Second) // one hour / 60 = one minute of clock time
		select {
		case r = <-done:
		case <-deadline:
			t.Fatal("the simulated minute never passed")
		case <-time.After(time.Millisecond):
		}
	}
	if r.Parts[0].Text != "Simulated response to: hello" || r.FinishReason != "STOP" {
		t.Fatalf("reply %+v", r)
	}
	var ee *Error
	turn.Kind = core.JobBatch
	turn.Contents[0].Parts[0].Text = "x " + MarkerFailRequest
	if _, err := sim.Generate(context.Background(), turn); !errors.As(err, &ee) || ee.Fatal || ee.Code != "INVALID_ARGUMENT" {
		t.Fatalf("fail_request: %v", err)
	}
	turn.Contents[0].Parts[0].Text = "x " + MarkerExpire
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sim.Generate(ctx, turn); !errors.Is(err, context.Canceled) {
		t.Fatalf("expire: %v", err)
	}
	failing := NewSimulator(SimulatorConfig{FailKinds: []core.JobKind{core.JobVideo}})
	if _, err := failing.RenderVideo(context.Background(), &VideoSpec{Prompt: "x"}, t.TempDir()+"/v"); err == nil || !strings.Contains(err.Error(), "Simulated") {
		t.Fatalf("FailKinds: %v", err)
	}
}

// A request carrying MarkerHold waits until the hold file exists, and not
// after; without a hold file the marker does nothing.
func TestSimulatorHold(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "release")
	sim := NewSimulator(SimulatorConfig{HoldFile: file})
	turn := &Turn{Kind: core.JobBatch, Contents: []Content{{Role: "user", Parts: []Part{{Text: "x " + MarkerHold}}}}}
	done := make(chan error, 1)
	go func() { _, err := sim.Generate(context.Background(), turn); done <- err }()
	// Held: a context that ends while it waits ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() { _, err := sim.Generate(ctx, turn); held <- err }()
	cancel()
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Fatalf("a held request whose context ended: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the request ran before its release: %v", err)
	default:
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the release: %v", err)
	}
	if _, err := NewSimulator(SimulatorConfig{}).Generate(context.Background(), turn); err != nil {
		t.Fatalf("without a hold file: %v", err)
	}
}

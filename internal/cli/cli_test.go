package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"runtime"
	"strings"
	"testing"
)

func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Env{Getenv: func(k string) string { return env[k] }, Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	t.Parallel()
	if code, _, errs := run(t, nil); code != 2 || !strings.Contains(errs, "serve") {
		t.Fatalf("no args: %d %q", code, errs)
	}
	if code, _, errs := run(t, nil, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("unknown: %d %q", code, errs)
	}
	if code, out, _ := run(t, nil, "version"); code != 0 || !strings.Contains(out, Version) {
		t.Fatalf("version: %d %q", code, out)
	}
	if code, _, errs := run(t, nil, "serve", "--time-scale", "0"); code != 2 || !strings.Contains(errs, "time-scale") {
		t.Fatalf("bad flag: %d %q", code, errs)
	}
	// --jwt-ttl is capped (issue 13, defect 12).
	if code, _, errs := run(t, nil, "serve", "--jwt-ttl", "2h"); code != 2 || !strings.Contains(errs, "jwt-ttl") {
		t.Fatalf("unbounded --jwt-ttl: %d %q", code, errs)
	}
	if code, _, errs := run(t, map[string]string{"LONGHOOK_WORKERS": "lots"}, "serve"); code != 2 || !strings.Contains(errs, "LONGHOOK_WORKERS") {
		t.Fatalf("bad env fallback: %d %q", code, errs)
	}
}

func TestProjectsAndKeysOnADataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := map[string]string{"LONGHOOK_DATA_DIR": dir} // flags fall back to LONGHOOK_*
	code, out, errs := run(t, env, "projects", "create", "acme")
	if code != 0 || !strings.Contains(out, "lh_") {
		t.Fatalf("projects create: %d %q %q", code, out, errs)
	}
	code, out, _ = run(t, env, "projects", "list")
	if code != 0 || !strings.Contains(out, "acme") {
		t.Fatalf("projects list: %q", out)
	}
	pid := strings.Fields(strings.Split(out, "\n")[1])[0]
	code, out, errs = run(t, env, "keys", "create", "--project", pid, "--name", "ci")
	if code != 0 {
		t.Fatalf("keys create: %q", errs)
	}
	keyID := strings.Fields(out)[1]
	plaintext := strings.TrimSpace(out[strings.LastIndex(out, ":")+1:])
	if code, _, _ = run(t, env, "keys", "revoke", keyID); code != 0 {
		t.Fatal("revoke failed")
	}
	code, out, _ = run(t, env, "keys", "list", "--project", pid)
	if code != 0 || strings.Contains(out, plaintext) || !strings.Contains(out, "…"+plaintext[len(plaintext)-4:]) {
		t.Fatalf("keys list must show only hints: %q", out)
	}
	if code, _, errs = run(t, env, "keys", "create", "--project", "nope"); code == 0 {
		t.Fatalf("key for a missing project accepted: %q", errs)
	}
}

// The benchmark runs end to end on a tiny workload and reports a ratio;
// its server is a child process whose CPU is reported on its own.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	t.Parallel()
	code, out, errs := run(t, nil, "bench", "--events", "300", "--webhooks", "2", "--concurrency", "4", "--batch", "50", "--json")
	if code != 0 {
		t.Fatalf("bench: %d %s", code, errs)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --json: %v: %s", err, out)
	}
	if rep.Deliveries != 600 || rep.DeliveriesPerSec <= 0 || rep.CeilingPerSec <= 0 || rep.Ratio <= 0 || rep.P99ms <= 0 ||
		rep.UnsignedCeilingPerSec <= 0 || rep.RatioUnsigned <= 0 {
		t.Fatalf("report: %+v", rep)
	}
	// /proc/<pid>/stat counts in 10 ms ticks: a child that ran 600
	// deliveries has used at least one.
	if runtime.GOOS == "linux" && (rep.ServerCPUusPerDelivery <= 0 || rep.ServerCPUusPerDelivery >= rep.CPUusPerDelivery) {
		t.Fatalf("server CPU %v µs of %v µs per delivery", rep.ServerCPUusPerDelivery, rep.CPUusPerDelivery)
	}
	if rep.PublishP50ms <= 0 || rep.PublishP99ms < rep.PublishP50ms || rep.ScheduleLagP99ms != 0 {
		t.Fatalf("publish calls: p50 %v p99 %v ms, lag %v ms without --rate", rep.PublishP50ms, rep.PublishP99ms, rep.ScheduleLagP99ms)
	}
	// The cores kept busy: all processes' CPU over the run's wall time,
	// consistent with the CPU per delivery and the rate, and no more
	// than the machine has (10 ms ticks of the children: some slack).
	want := rep.CPUusPerDelivery * rep.DeliveriesPerSec / 1e6
	if rep.CPUCoresUsed <= 0 || rep.CPUCoresUsed > float64(runtime.NumCPU())*1.1 || math.Abs(rep.CPUCoresUsed-want) > 0.01*want+1e-9 {
		t.Fatalf("cores used %v (CPU per delivery × rate: %v) of %d", rep.CPUCoresUsed, want, runtime.NumCPU())
	}
	if runtime.GOOS == "linux" && (rep.ServerCPUCoresUsed <= 0 || rep.ServerCPUCoresUsed >= rep.CPUCoresUsed) {
		t.Fatalf("server cores used %v of %v", rep.ServerCPUCoresUsed, rep.CPUCoresUsed)
	}
}

// A paced run reports how late its publishes left against the schedule,
// which says whether its latencies are those of the rate asked for.
func TestBenchPacedReportsScheduleLag(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	t.Parallel()
	code, out, errs := run(t, nil, "bench", "--in-process", "--events", "200", "--webhooks", "1", "--concurrency", "4", "--rate", "1000")
	if code != 0 {
		t.Fatalf("bench: %d %s", code, errs)
	}
	for _, want := range []string{"publish call       p50 ", "schedule lag       p50 "} {
		if !strings.Contains(out, want) {
			t.Fatalf("no %q in the report:\n%s", want, out)
		}
	}
}

// The dynamic benchmark warms up, runs its rounds between signing
// measurements, and counts only the rounds' deliveries (here with its
// server in the bench process).
func TestBenchDynamicSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	t.Parallel()
	code, out, errs := run(t, nil, "bench", "--in-process", "--dynamic", "--events", "120", "--webhooks", "2", "--concurrency", "4", "--batch", "20", "--rounds", "3", "--json")
	if code != 0 {
		t.Fatalf("bench: %d %s", code, errs)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench --json: %v: %s", err, out)
	}
	if rep.Deliveries != 240 || len(rep.RoundRatios) != 3 || rep.RS256SignPerSec <= 0 || rep.RatioToSigning <= 0 || rep.CPUusPerRS256 <= 0 {
		t.Fatalf("report: %+v", rep)
	}
	for _, r := range rep.RoundRatios {
		if r <= 0 {
			t.Fatalf("round ratios %v", rep.RoundRatios)
		}
	}
	if code, _, _ := run(t, nil, "bench", "--dynamic", "--rounds", "0"); code == 0 {
		t.Fatal("--rounds 0 accepted")
	}
}

// bench -h lists --gateway (it was taken before the flag set and missing
// from the help), and LONGHOOK_GATEWAY, the variable the help names,
// selects the gateway bench as the flag does.
func TestBenchHelpListsGateway(t *testing.T) {
	t.Parallel()
	code, _, errs := run(t, nil, "bench", "-h")
	if code != 0 || !strings.Contains(errs, "-gateway") || !strings.Contains(errs, "LONGHOOK_GATEWAY") {
		t.Errorf("bench -h: exit %d, no -gateway: %s", code, errs)
	}
	for _, env := range []map[string]string{nil, {"LONGHOOK_GATEWAY": "true"}} {
		args := []string{"bench", "-h"}
		if env == nil {
			args = []string{"bench", "--gateway", "-h"}
		}
		code, _, errs := run(t, env, args...)
		if code != 0 || !strings.Contains(errs, "-body-bytes") {
			t.Errorf("%v %v: exit %d, not the gateway bench's flags: %s", env, args, code, errs)
		}
	}
}

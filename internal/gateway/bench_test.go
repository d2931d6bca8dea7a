package gateway

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestRunBenchSmoke(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := RunBench(context.Background(), []string{"--gateway", "-n", "300", "--jwt-n", "40", "-c", "8", "--rounds", "1",
		"--data-dir", t.TempDir(), "--json", "--sinks", "http,kafka,pubsub", "--sink-n", "100"}, func(string) string { return "" }, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var rep BenchReport
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// The sinks that need no server outside the process: a local
	// receiver, kfake and pstest.
	if len(rep.Results) != 6 || rep.Results[3].Scenario != "sink-http" || rep.Results[5].Scenario != "sink-pubsub" {
		t.Fatalf("results: %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Errors != 0 || r.PerSecond <= 0 || r.Ratio <= 0 {
			t.Errorf("%+v", r)
		}
	}
}

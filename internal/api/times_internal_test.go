package api

import (
	"regexp"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// The batch, operation and file resources are proto3 JSON, whose
// google.protobuf.Timestamp is RFC 3339 in UTC with 0, 3, 6 or 9
// fractional digits; they showed Go's RFC3339Nano, which trims trailing
// zeros ("…:07.77401Z", "…:18.44Z"). An interaction's created and updated
// are "ISO 8601 format (YYYY-MM-DDThh:mm:ssZ)" in the official SDK's types
// (@google/genai 3.1.0 Interaction.created); they showed microseconds.
func TestJobResourceTimeFormats(t *testing.T) {
	proto := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$`)
	seconds := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	base := time.Date(2026, 5, 5, 12, 0, 7, 0, time.UTC)
	for _, frac := range []time.Duration{0, 440 * time.Millisecond, 774010 * time.Microsecond, 123456789, 100 * time.Microsecond} {
		at := base.Add(frac)
		j := &core.Job{ID: "b1", Kind: core.JobBatch, Model: "m", State: core.JobFailed, CreateTime: at, UpdateTime: at, EndTime: at}
		meta := (&server{}).renderBatch(t.Context(), j, false)["metadata"].(map[string]any)
		for _, k := range []string{"createTime", "updateTime", "endTime"} {
			if v, _ := meta[k].(string); !proto.MatchString(v) {
				t.Errorf("batch %s = %q for %s, want a proto3 JSON timestamp", k, v, at.Format(time.RFC3339Nano))
			}
		}
		f := renderFile(&core.File{ID: "f1", CreateTime: at, UpdateTime: at, ExpireTime: at}, "http://x/v1beta")
		for _, k := range []string{"createTime", "updateTime", "expirationTime"} {
			if v, _ := f[k].(string); !proto.MatchString(v) {
				t.Errorf("file %s = %q for %s, want a proto3 JSON timestamp", k, v, at.Format(time.RFC3339Nano))
			}
		}
		if got, _ := meta["createTime"].(string); !at.Equal(mustParse(t, got)) {
			t.Errorf("batch createTime %q reads back as another time than %s", got, at.Format(time.RFC3339Nano))
		}
		in := renderInteraction(&core.Job{ID: "i1", Kind: core.JobInteraction, State: core.JobSucceeded, CreateTime: at, UpdateTime: at}, false)
		for _, k := range []string{"created", "updated"} {
			if v, _ := in[k].(string); !seconds.MatchString(v) {
				t.Errorf("interaction %s = %q, want YYYY-MM-DDThh:mm:ssZ", k, v)
			}
		}
	}
}

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

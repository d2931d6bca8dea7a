package cli

import (
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/docstest"
)

// documentedData reads docs/api.md's "Job events" and "Operational
// events" tables: each event type's data fields.
func documentedData(t *testing.T) map[string][]string {
	t.Helper()
	out := docstest.EventFields(t, "../../docs/api.md", "### Job events", "### Operational events")
	if len(out) < 13 {
		t.Fatalf("docs/api.md lists data fields of %d event types: %v", len(out), out)
	}
	return out
}

// Every trigger sample carries exactly the data fields docs/api.md lists
// for its type — the fields a real event carries — so a receiver tested
// with `longhook trigger` is tested against what it will get.
func TestTriggerSamplesAsDocumented(t *testing.T) {
	t.Parallel()
	docs := documentedData(t)
	for _, typ := range sampleTypes() {
		data, ok := sampleData(typ, time.Now())
		if !ok {
			t.Fatalf("no sample for %s", typ)
		}
		want, ok := docs[typ]
		if !ok {
			t.Errorf("%s: not in docs/api.md's event tables", typ)
			continue
		}
		var got []string
		for k := range data {
			got = append(got, k)
		}
		// The values of reason the table names in parentheses are not
		// fields.
		want = slices.DeleteFunc(slices.Clone(want), func(f string) bool {
			return slices.Contains([]string{"consecutive_failures", "gone", "manual"}, f)
		})
		slices.Sort(got)
		slices.Sort(want)
		want = slices.Compact(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s sample fields %v, docs/api.md lists %v", typ, got, want)
		}
	}
}

package cli

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// documentedData reads docs/api.md's "Job events" and "Operational
// events" tables: each event type's data fields.
func documentedData(t *testing.T) map[string][]string {
	t.Helper()
	fh, err := os.Open("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	row := regexp.MustCompile("^\\| `([a-z_.]+)` \\|(.*)\\|$")
	field := regexp.MustCompile("`([a-z_]+)`")
	out := map[string][]string{}
	in := false
	for sc := bufio.NewScanner(fh); sc.Scan(); {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "### Job events"), strings.HasPrefix(line, "### Operational events"):
			in = true
		case in && strings.HasPrefix(line, "#"):
			in = false
		case in:
			m := row.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			cells := strings.Split(m[2], "|")
			last := cells[len(cells)-1] // the data column (operational rows have a "when" column first)
			for _, f := range field.FindAllStringSubmatch(last, -1) {
				out[m[1]] = append(out[m[1]], f[1])
			}
		}
	}
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

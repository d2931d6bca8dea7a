// Package docstest reads what tests check the code against in docs/: the
// data fields docs/api.md's event tables list for each event type.
package docstest

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// EventFields reads the tables under the api.md headings that start with
// one of sections ("### Job events", ...): event type → the backquoted
// names in the row's last cell (its data fields), in the order listed.
func EventFields(t testing.TB, apiMD string, sections ...string) map[string][]string {
	t.Helper()
	fh, err := os.Open(apiMD)
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
		case strings.HasPrefix(line, "#"):
			in = false
			for _, s := range sections {
				in = in || strings.HasPrefix(line, s)
			}
		case in:
			m := row.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			cells := strings.Split(m[2], "|")
			for _, f := range field.FindAllStringSubmatch(cells[len(cells)-1], -1) {
				out[m[1]] = append(out[m[1]], f[1])
			}
		}
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

package envflag

import "testing"

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	verbs := []string{"list", "get", "create", "update", "delete", "ping", "rotate", "enable", "disable"}
	for word, want := range map[string]string{
		"lsit": "list", "gte": "get", "craete": "create", "updat": "update", "DELETE": "delete",
		"rot": "rotate", "enabel": "enable", "xyz": "", "go": "", "": "", "removeall": "",
	} {
		got := DidYouMean(word, verbs)
		if want == "" && got != "" || want != "" && got != ` (did you mean "`+want+`"?)` {
			t.Errorf("DidYouMean(%q) = %q, want %q", word, got, want)
		}
	}
}

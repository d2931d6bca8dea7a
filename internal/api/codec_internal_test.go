package api

import (
	"bytes"
	"testing"
)

func TestJSONPathAt(t *testing.T) {
	doc := []byte(`{"name":"n","data":{"a":[1,{"b":"XX"},"YY"],"c":"ZZ"},"webhook_config":{"uris":["u"],"user_metadata":{"k":"WW"}}}`)
	for _, c := range []struct {
		marker, want string
	}{
		{"XX", "data.a[1].b"},
		{"YY", "data.a[2]"},
		{"ZZ", "data.c"},
		{"WW", "webhook_config.user_metadata.k"},
		{`"n"`, "name"},
	} {
		off := int64(bytes.Index(doc, []byte(c.marker)))
		if got := jsonPathAt(doc, off); got != c.want {
			t.Errorf("at %q: %q, want %q", c.marker, got, c.want)
		}
	}
}

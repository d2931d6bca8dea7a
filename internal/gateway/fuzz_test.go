package gateway

import (
	"os"
	"testing"
)

// FuzzParseConfig feeds arbitrary YAML to the gateway config parser: it
// never panics, nor does validation, and defaults are stable (applying
// them twice validates the same as once).
func FuzzParseConfig(f *testing.F) {
	if b, err := os.ReadFile("testdata/gateway.example.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"sources:\n  - name: a\n    verify:\n      hmac_secrets: [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]\n    sinks:\n      - name: d\n        discard: {}\n",
		"sources:\n  - name: j\n    verify:\n      jwks: {url: \"https://x/jwks\", issuer: i, audience: a, project: p}\n    sinks:\n      - {name: h, http: {url: \"http://127.0.0.1:9\"}}\n",
		"", "{}", "sources: 3", "&a [*a, *a]", "sources:\n  - name: ${LONGHOOK_X}\n",
	} {
		f.Add([]byte(s))
	}
	getenv := func(string) string { return "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b, getenv)
		if err != nil {
			return
		}
		once := c.withDefaults().validate()
		twice := c.withDefaults().withDefaults().validate()
		if (once == nil) != (twice == nil) {
			t.Fatalf("defaults not stable: %v, then %v", once, twice)
		}
	})
}

// TestDefaultAddrLoopback (issue 13, defect 12): without addr the gateway
// listens on loopback, like serve; a public address is an explicit choice.
func TestDefaultAddrLoopback(t *testing.T) {
	t.Parallel()
	if got := (Config{}).withDefaults().Addr; got != "127.0.0.1:8080" {
		t.Fatalf("default addr %q, want 127.0.0.1:8080", got)
	}
}

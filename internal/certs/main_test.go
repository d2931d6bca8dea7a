package certs_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no goroutine of ours outlives the tests. Pebble's
// validation authority starts a task loop it never stops; it is the test
// ACME server's, not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/letsencrypt/pebble/v2/va.VAImpl.processTasks"))
}

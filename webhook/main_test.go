package webhook

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind, such as a
// JWKS fetch that outlives its verifier call.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

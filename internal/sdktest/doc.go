// Package sdktest drives a real `longhook serve` with the official Google
// Gen AI SDKs. It is a module of its own (internal/sdktest/go.mod) so that
// the Go SDK (google.golang.org/genai) and the ~15 modules it pulls in
// stay out of longhook's go.mod: the server never imports them. Run its
// tests from this directory: `cd internal/sdktest && go test ./...`
// (`go test ./...` at the repository root skips nested modules; .ci/run
// runs both).
package sdktest

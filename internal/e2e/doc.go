// Package e2e holds end-to-end tests that run a real `longhook serve`
// subprocess, built once per test binary, against real HTTP receivers and
// independent verifiers: the reference Standard Webhooks Go library,
// github.com/golang-jwt/jwt/v5, and the npm packages standardwebhooks, jose,
// jsonwebtoken and jwks-rsa (run with node; tests that need them skip when
// node or npm is missing).
//
// The package has no non-test code besides this file. Set
// LONGHOOK_E2E_CRASH_EVENTS to change how many events the crash-safety test
// publishes (default 20000).
package e2e

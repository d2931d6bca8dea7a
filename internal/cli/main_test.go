package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// TestMain lets `longhook bench` start its servers as child processes in
// tests too: the child is this test binary, which then runs the command
// line it was given instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("LONGHOOK_CLI_TEST_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Run(ctx, os.Args[1:], Env{Getenv: os.Getenv, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		stop()
		os.Exit(code)
	}
	os.Setenv("LONGHOOK_CLI_TEST_CHILD", "1")
	os.Exit(m.Run())
}

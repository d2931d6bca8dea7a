package cli

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/longhook/longhook/internal/envflag"
	"github.com/longhook/longhook/internal/gateway"
	"github.com/longhook/longhook/internal/gateway/check"
	"github.com/longhook/longhook/internal/gateway/listen"
)

// The receiving edge lives in internal/gateway; these adapt its entry
// points to the command table.

func runGateway(ctx context.Context, args []string, env Env) error {
	err := gateway.RunGateway(ctx, args, env.Getenv, env.Stdout, env.Stderr)
	if errors.Is(err, gateway.ErrUsage) {
		return usageError{err}
	}
	return err
}

// usageError is another package's command-line mistake, which exits 2 as
// errUsage does; its message is the other package's.
type usageError struct{ error }

func (u usageError) Is(target error) bool { return target == errUsage }

// runListen runs listen; a stream the server refuses for good exits as the
// client commands do for the same answer (4 not authorized, 5 not found),
// with the server's message rather than its JSON.
func runListen(ctx context.Context, args []string, env Env) error {
	err := listen.RunListen(ctx, args, env.Getenv, env.Stdout, env.Stderr)
	var refused *listen.RefusedError
	if errors.As(err, &refused) {
		code := exitAuth
		if refused.Status == http.StatusNotFound {
			code = exitNotFound
		}
		return &exitError{code: code, err: refused}
	}
	return err
}

func runCheck(ctx context.Context, args []string, env Env) error {
	return check.RunCheck(ctx, args, env.Getenv, env.Stdout, env.Stderr)
}

// benchGateway reports whether args (or LONGHOOK_GATEWAY) ask for
// `longhook bench --gateway` and returns the remaining args.
func benchGateway(args []string, getenv func(string) string) ([]string, bool) {
	for i, a := range args {
		if a == "--gateway" || a == "-gateway" || a == "--gateway=true" || a == "-gateway=true" {
			return slices.Delete(slices.Clone(args), i, i+1), true
		}
	}
	if getenv != nil {
		if on, err := strconv.ParseBool(getenv(envflag.Name("gateway"))); err == nil && on {
			return args, true
		}
	}
	return args, false
}

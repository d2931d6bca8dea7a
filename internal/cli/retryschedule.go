package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// defaultRetryScheduleFlag is core.DefaultRetrySchedule as serve
// --retry-schedule spells it, so the help shows the schedule in force.
func defaultRetryScheduleFlag() string {
	steps := make([]string, len(core.DefaultRetrySchedule))
	for i, d := range core.DefaultRetrySchedule {
		steps[i] = shortDuration(d)
	}
	return strings.Join(steps, ",")
}

// shortDuration drops the zero units Go's String adds ("2m0s" → "2m").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseRetryScheduleFlag reads --retry-schedule: comma-separated Go
// durations, each in (0, 24h]. A bad value is a usage error naming the
// flag (exit 2), as for the other serve flags, rather than a silently
// kept default.
func parseRetryScheduleFlag(v string) ([]time.Duration, error) {
	steps := splitList(v)
	if len(steps) == 0 {
		return nil, fmt.Errorf("%w: --retry-schedule is empty; give comma-separated durations such as 5s,30s,2m", errUsage)
	}
	out := make([]time.Duration, len(steps))
	for i, s := range steps {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%w: --retry-schedule: step %d %q is not a duration such as 5s, 2m or 1h", errUsage, i+1, s)
		}
		out[i] = d
	}
	return out, checkRetrySchedule(out)
}

// checkRetrySchedule refuses a schedule the engine cannot follow (a step
// of 0 or less, or past the 24 h horizon) — for NewServer's callers too,
// who set ServeConfig.RetrySchedule without the flag.
func checkRetrySchedule(s []time.Duration) error {
	if err := core.ValidateRetrySchedule("--retry-schedule", s); err != nil {
		var ie *core.InvalidArgumentError
		if errors.As(err, &ie) {
			return fmt.Errorf("%w: %s", errUsage, ie.Message)
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

package cli

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/client"
)

// extFlags are the flags of `webhooks create` and `webhooks update` for
// the longhook extension fields of a webhook (docs/api.md): its rate
// limit, trace propagation and retry schedule.
type extFlags struct {
	rate    *string
	burst   *int
	trace   *bool
	retries *string
}

// noneValue removes a setting in `webhooks update`.
const noneValue = "none"

func addExtFlags(fs *flag.FlagSet, update bool) extFlags {
	remove := ""
	if update {
		remove = "; " + noneValue + " removes it"
	}
	return extFlags{
		rate:  fs.String("rate-limit", "", "deliveries per second to the webhook at most, e.g. 2.5 (a longhook extension)"+remove),
		burst: fs.Int("burst", 0, "deliveries at once within --rate-limit (server default 1)"),
		trace: fs.Bool("trace-propagation", false, "send a W3C traceparent header with each attempt when the server traces"),
		retries: fs.String("retry-schedule", "", "delays after failed attempts, e.g. 5s,1m,10m, in place of the server's schedule"+
			strings.Replace(remove, "removes it", "restores the server's", 1)),
	}
}

// apply sets the fields of p whose flags were given and returns their
// mask paths. An update takes the command line's flags only, as its
// others do (a variable left in the environment must not change a
// webhook); a create also takes their variables.
func (e extFlags) apply(fs *flag.FlagSet, p *client.WebhookParams, update bool) ([]string, error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !update {
		given["rate-limit"] = given["rate-limit"] || *e.rate != ""
		given["burst"] = given["burst"] || *e.burst != 0
		given["trace-propagation"] = given["trace-propagation"] || *e.trace
		given["retry-schedule"] = given["retry-schedule"] || *e.retries != ""
	}
	var mask []string
	if given["burst"] && !given["rate-limit"] {
		return nil, fmt.Errorf("%w: --burst needs --rate-limit (the limit is set as a whole)", errUsage)
	}
	if given["rate-limit"] {
		rl, err := e.rateLimit(update)
		if err != nil {
			return nil, err
		}
		p.RateLimit, mask = rl, append(mask, "rate_limit")
	}
	if given["trace-propagation"] {
		p.TracePropagation, mask = *e.trace, append(mask, "trace_propagation")
	}
	if given["retry-schedule"] {
		steps, err := e.retrySchedule(update)
		if err != nil {
			return nil, err
		}
		p.RetrySchedule, mask = steps, append(mask, "retry_schedule")
	}
	return mask, nil
}

func (e extFlags) rateLimit(update bool) (*client.RateLimit, error) {
	v := strings.TrimSpace(*e.rate)
	if update && v == noneValue {
		if *e.burst != 0 {
			return nil, fmt.Errorf("%w: --burst with --rate-limit %s", errUsage, noneValue)
		}
		return nil, nil
	}
	rate, err := strconv.ParseFloat(strings.TrimSuffix(v, "/s"), 64)
	if err != nil || rate <= 0 {
		hint := ""
		if update {
			hint = ", or " + noneValue
		}
		return nil, fmt.Errorf("%w: --rate-limit %q is not a positive number of deliveries per second such as 2.5%s", errUsage, v, hint)
	}
	return &client.RateLimit{PerSecond: rate, Burst: *e.burst}, nil
}

// retrySchedule reads --retry-schedule as serve does (Go durations, each
// in (0, 24h]) and spells each step as the API takes it: a
// google.protobuf.Duration, decimal seconds then "s".
func (e extFlags) retrySchedule(update bool) ([]string, error) {
	v := strings.TrimSpace(*e.retries)
	if update && v == noneValue {
		return nil, nil
	}
	steps, err := parseRetryScheduleFlag(v)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(steps))
	for i, d := range steps {
		out[i] = protoDuration(d)
	}
	return out, nil
}

// protoDuration is d in google.protobuf.Duration's JSON form, exactly:
// "120s", "1.5s", "0.000000001s".
func protoDuration(d time.Duration) string {
	s := strconv.FormatInt(int64(d/time.Second), 10)
	if frac := d % time.Second; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", int64(frac)), "0")
	}
	return s + "s"
}

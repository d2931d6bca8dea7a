package core

import (
	"strconv"
	"strings"
	"time"
)

// MaxRetrySteps bounds a configured retry schedule: it is stored with
// every webhook and read on every failed attempt, and more steps than
// this cannot mean anything a receiver would want within a 24 h window.
const MaxRetrySteps = 100

// MaxRetryStep is the longest step of a schedule: the last attempt is at
// the 24 h horizon (docs/contract.md §6), so a longer step would only be
// cut to it.
const MaxRetryStep = 24 * time.Hour

// ValidateRetrySchedule checks a configured schedule (serve
// --retry-schedule, a webhook's retry_schedule): at most MaxRetrySteps
// steps, each in (0, 24h]. The steps need not grow. An empty schedule is
// valid: it means the server's.
func ValidateRetrySchedule(field string, s []time.Duration) error {
	if len(s) > MaxRetrySteps {
		return Invalid(field, "%s has %d steps; at most %d are allowed", field, len(s), MaxRetrySteps)
	}
	for i, d := range s {
		if d <= 0 || d > MaxRetryStep {
			return Invalid(field, "%s[%d] is %v; each step must be more than 0 and at most 24h", field, i, d)
		}
	}
	return nil
}

// FormatGoogleDuration renders d as the proto3 JSON form of
// google.protobuf.Duration: seconds with 0, 3, 6 or 9 fractional digits
// and an "s" ("5s", "1.500s").
func FormatGoogleDuration(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	out := sign + strconv.FormatInt(sec, 10)
	switch {
	case ns == 0:
	case ns%1e6 == 0:
		out += "." + pad(ns/1e6, 3)
	case ns%1e3 == 0:
		out += "." + pad(ns/1e3, 6)
	default:
		out += "." + pad(ns, 9)
	}
	return out + "s"
}

func pad(v int64, width int) string {
	s := strconv.FormatInt(v, 10)
	return strings.Repeat("0", width-len(s)) + s
}

// ParseGoogleDuration reads the proto3 JSON form of a
// google.protobuf.Duration: an optional "-", decimal seconds with at most
// nine fractional digits, then "s". Go's own forms ("1m30s") are not
// Google's and are refused, so a value that works here works against
// any Google-style API.
func ParseGoogleDuration(s string) (time.Duration, bool) {
	num, ok := strings.CutSuffix(s, "s")
	if !ok || num == "" {
		return 0, false
	}
	neg := false
	if num[0] == '-' {
		neg, num = true, num[1:]
	}
	whole, frac, hasFrac := strings.Cut(num, ".")
	if whole == "" || len(whole) > 11 || !digits(whole) || (hasFrac && (frac == "" || len(frac) > 9 || !digits(frac))) {
		return 0, false
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	// 9223372036 s is the largest whole second a time.Duration holds.
	if err != nil || sec > int64(time.Duration(1<<63-1)/time.Second) {
		return 0, false
	}
	ns := int64(0)
	if hasFrac {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	d := time.Duration(sec)*time.Second + time.Duration(ns)
	if d < 0 { // overflowed past the largest Duration
		return 0, false
	}
	if neg {
		d = -d
	}
	return d, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

package core

import (
	"testing"
	"time"
)

// Google Duration strings (the proto3 JSON form of
// google.protobuf.Duration) read and print as the protobuf runtime does:
// up to nine fractional digits in, 0/3/6/9 out.
func TestGoogleDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"5s": 5 * time.Second, "1.5s": 1500 * time.Millisecond, "0.000000001s": 1, "86400s": 24 * time.Hour,
		"-2.25s": -2250 * time.Millisecond, "0s": 0, "9223372036.854775807s": 1<<63 - 1,
	} {
		if got, ok := ParseGoogleDuration(in); !ok || got != want {
			t.Errorf("ParseGoogleDuration(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "s", "5", "5m", "1m30s", ".5s", "5.s", "1.0000000001s", "+5s", "--5s", "5 s", "9223372037s", "9223372036.854775808s", "1e3s"} {
		if got, ok := ParseGoogleDuration(in); ok {
			t.Errorf("ParseGoogleDuration(%q) = %v, want refused", in, got)
		}
	}
	for d, want := range map[time.Duration]string{
		5 * time.Second: "5s", 1500 * time.Millisecond: "1.500s", 1500 * time.Microsecond: "0.001500s", 1: "0.000000001s", -2250 * time.Millisecond: "-2.250s",
	} {
		if got := FormatGoogleDuration(d); got != want {
			t.Errorf("FormatGoogleDuration(%v) = %q, want %q", d, got, want)
		} else if back, ok := ParseGoogleDuration(got); !ok || back != d {
			t.Errorf("ParseGoogleDuration(%q) = %v, %v; want %v back", got, back, ok, d)
		}
	}
}

func TestValidateRetrySchedule(t *testing.T) {
	t.Parallel()
	for _, ok := range [][]time.Duration{nil, {time.Nanosecond}, {time.Hour, time.Second, 24 * time.Hour}, make100(time.Second)} {
		if err := ValidateRetrySchedule("s", ok); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
	for _, bad := range [][]time.Duration{{0}, {time.Second, -time.Second}, {24*time.Hour + 1}, append(make100(time.Second), time.Second)} {
		if err := ValidateRetrySchedule("s", bad); !IsInvalid(err) {
			t.Errorf("%v: %v, want InvalidArgument", bad, err)
		}
	}
}

func make100(d time.Duration) []time.Duration {
	s := make([]time.Duration, MaxRetrySteps)
	for i := range s {
		s[i] = d
	}
	return s
}

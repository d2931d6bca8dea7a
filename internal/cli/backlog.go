package cli

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// insertBacklog writes n deliveries scheduled for a retry hours away, as a
// long outage of some destination would leave behind. They belong to a
// disabled-looking destination id and are never due during a benchmark.
func (s *Server) insertBacklog(ctx context.Context, n int) error {
	now := time.Now().UTC()
	const perEvent = 1000
	for done := 0; done < n; {
		var evs []core.NewEvent
		for len(evs) < 10 && done < n {
			ev := core.Event{ID: core.NewSortableID(now), ProjectID: s.ProjectID, Type: "batch.succeeded",
				Payload: []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-01T00:00:00Z","data":{}}`), CreateTime: now}
			k := min(perEvent, n-done)
			ds := make([]core.Delivery, k)
			for i := range ds {
				ds[i] = core.Delivery{ID: core.NewMessageID(now), EventID: ev.ID, ProjectID: s.ProjectID,
					WebhookID: "backlog", Dest: "backlog", EventType: ev.Type, Status: core.DeliveryPending,
					Attempts: 3, NextAttemptTime: now.Add(time.Duration(2+i%20) * time.Hour),
					ScheduleStart: now, CreateTime: now, UpdateTime: now}
			}
			ev.DeliveryCount = k
			evs = append(evs, core.NewEvent{Event: ev, Deliveries: ds})
			done += k
		}
		if _, err := s.store.PublishEvents(ctx, evs); err != nil {
			return err
		}
	}
	return nil
}

// maxRSSMB returns the peak resident set size of this process in MB
// (Linux; 0 elsewhere).
func maxRSSMB() float64 { return peakRSSMB("self") }

// peakRSSMB returns the peak resident set size of process pid ("self" for
// this one) in MB (Linux; 0 elsewhere or once it has exited).
func peakRSSMB(pid string) float64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

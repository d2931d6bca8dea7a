package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sync"
)

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// cpuProfileOnSignal creates path now and profiles the process into it
// from the first profileStartSignal to the next profileStopSignal, or to
// stop. It says "cpu profile started" and then "cpu profile written to
// PATH" on out once each has happened, so a bench that sent the signal
// knows when its measured phase may begin and when the file is whole.
// Signals out of turn (a second start, a stop first) are logged and
// ignored: one file holds one profile.
func cpuProfileOnSignal(path string, out io.Writer, logger *slog.Logger) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, profileStartSignal, profileStopSignal)
	var mu sync.Mutex
	running, written := false, false
	finish := func() error {
		pprof.StopCPUProfile()
		running, written = false, true
		return f.Close()
	}
	done := make(chan struct{})
	handled := make(chan struct{})
	go func() {
		defer close(handled)
		for {
			var sig os.Signal
			select {
			case sig = <-sigs:
			case <-done:
				return
			}
			mu.Lock()
			switch {
			case sig == profileStartSignal && !running && !written:
				if err := pprof.StartCPUProfile(f); err != nil {
					logger.Error("cpuprofile.start", slog.String("error", err.Error()))
					break
				}
				running = true
				fmt.Fprintln(out, "cpu profile started")
			case sig == profileStopSignal && running:
				if err := finish(); err != nil {
					logger.Error("cpuprofile.write", slog.String("error", err.Error()))
					break
				}
				fmt.Fprintf(out, "cpu profile written to %s\n", path)
			default:
				logger.Warn("cpuprofile.signal_ignored", slog.String("signal", sig.String()), slog.Bool("running", running), slog.Bool("written", written))
			}
			mu.Unlock()
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-handled
		mu.Lock()
		defer mu.Unlock()
		if running {
			_ = finish()
		} else if !written {
			f.Close()
		}
	}, nil
}

package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/procstat"
)

// benchServer is one `serve` instance of a benchmark. By default it is a
// child process running `longhook serve`, so its CPU time is its own and
// can be set beside other systems' published figures; with --in-process
// it is a Server in the bench process (the only way to measure on a
// platform without /proc), and its CPU is not told apart.
type benchServer struct {
	URL string
	cmd *exec.Cmd // the child process, or nil
	srv *Server   // the in-process server, or nil
	// acks are the child's "cpu profile ..." lines; closed when its
	// stdout ends.
	acks chan string
}

// benchServerConfig says how to start the servers of a run.
type benchServerConfig struct {
	c         benchConfig
	dbURL     string
	dir       string
	key       string
	masterKey []byte
	env       Env
}

// quietServeEnv is the environment of a server in the bench process:
// the bootstrap API key and the master key given, no output.
func quietServeEnv(key string, masterKey []byte) Env {
	return Env{Getenv: func(k string) string {
		switch k {
		case "LONGHOOK_BOOTSTRAP_API_KEY":
			return key
		case "LONGHOOK_MASTER_KEY":
			return base64.StdEncoding.EncodeToString(masterKey)
		}
		return ""
	}, Stdout: io.Discard, Stderr: io.Discard}
}

// startBenchServers starts c.Instances servers and returns them and a
// function that stops them all.
func startBenchServers(ctx context.Context, bc benchServerConfig) ([]*benchServer, func(), error) {
	var servers []*benchServer
	srvCtx, stopSrv := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	stopAll := func() {
		for _, s := range servers {
			if s.cmd != nil {
				_ = s.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		stopSrv()
		wg.Wait()
	}
	for i := range max(bc.c.Instances, 1) {
		s, err := bc.start(ctx, srvCtx, i, &wg)
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		servers = append(servers, s)
	}
	return servers, stopAll, nil
}

// serveConfig is the configuration of server i.
func (bc benchServerConfig) serveConfig(i int) ServeConfig {
	c := bc.c
	return ServeConfig{
		Addr: "127.0.0.1:0", DataDir: fmt.Sprintf("%s/i%d", bc.dir, i), DatabaseURL: bc.dbURL, Dev: true,
		Workers: c.Workers, PerDest: c.PerDest, PerDestMax: c.PerDestMax, SoftStop: time.Second, TimeScale: 1, Migrate: true, Lease: time.Minute,
	}
}

// start starts server i (the first one with the backlog), which serves
// until srvCtx ends; wg waits for it.
func (bc benchServerConfig) start(ctx, srvCtx context.Context, i int, wg *sync.WaitGroup) (*benchServer, error) {
	c := bc.c
	backlog := i == 0 && c.Backlog > 0
	if c.InProcess {
		srv, err := NewServer(ctx, bc.serveConfig(i), quietServeEnv(bc.key, bc.masterKey), benchLogger(bc.env, c.LogLevel))
		if err != nil {
			return nil, err
		}
		if backlog {
			if err := srv.insertBacklog(ctx, c.Backlog); err != nil {
				return nil, fmt.Errorf("backlog: %w", err)
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = srv.Run(srvCtx) }()
		return &benchServer{URL: srv.URL, srv: srv}, nil
	}
	if backlog {
		// The backlog goes in before the child starts, through a
		// server in this process on the same data directory.
		if err := bc.insertBacklog(ctx); err != nil {
			return nil, err
		}
	}
	s, err := startChild(ctx, bc.serveConfig(i), bc)
	if err != nil {
		return nil, err
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.reap(srvCtx) }()
	return s, nil
}

// insertBacklog inserts --backlog scheduled retries into the database of
// server 0 through a server in this process, closed after.
func (bc benchServerConfig) insertBacklog(ctx context.Context) error {
	srv, err := NewServer(ctx, bc.serveConfig(0), quietServeEnv(bc.key, bc.masterKey), benchLogger(bc.env, bc.c.LogLevel))
	if err != nil {
		return err
	}
	err = srv.insertBacklog(ctx, bc.c.Backlog)
	done, cancel := context.WithCancel(ctx)
	cancel()
	_ = srv.Run(done) // closes it
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	return nil
}

// reap waits for the child to exit, or to be stopped.
func (s *benchServer) reap(stopped context.Context) {
	waited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(waited) }()
	select {
	case <-waited:
		return
	case <-stopped.Done():
	}
	// Stopped: SIGTERM was sent; a server that does not shut
	// down within its soft stop and then some is killed.
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-waited
	}
}

// childArgs are the arguments of a `longhook serve` child with cfg.
func childArgs(cfg ServeConfig, bc benchServerConfig) []string {
	args := []string{"serve", "--addr", cfg.Addr, "--data-dir", cfg.DataDir, "--dev", "--migrate",
		"--workers", strconv.Itoa(cfg.Workers), "--per-destination", strconv.Itoa(cfg.PerDest),
		"--per-destination-max", strconv.Itoa(cfg.PerDestMax),
		"--soft-stop", cfg.SoftStop.String(), "--lease", cfg.Lease.String(), "--log-level", bc.c.LogLevel}
	if cfg.DatabaseURL != "" {
		args = append(args, "--database-url", cfg.DatabaseURL)
	}
	if bc.c.CPUProfile != "" {
		// Instance 0 profiles to the file named; others beside it.
		f := bc.c.CPUProfile
		if n := strings.TrimPrefix(cfg.DataDir, bc.dir+"/i"); n != "0" {
			f += ".i" + n
		}
		// Profiled from the bench's signal on: what it measures, not
		// the start-up and set-up before.
		args = append(args, "--cpuprofile", f, "--cpuprofile-on-signal")
	}
	return args
}

// startChild runs `longhook serve` (this executable) with cfg and waits
// for the line that says where it listens.
func startChild(ctx context.Context, cfg ServeConfig, bc benchServerConfig) (*benchServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bench: %w (use --in-process)", err)
	}
	cmd := exec.Command(exe, childArgs(cfg, bc)...)
	// Only what the child needs: the bench's own LONGHOOK_* settings are
	// not the server's.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LONGHOOK_") || strings.HasPrefix(kv, "LONGHOOK_CLI_TEST_CHILD=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LONGHOOK_BOOTSTRAP_API_KEY="+bc.key,
		"LONGHOOK_MASTER_KEY="+base64.StdEncoding.EncodeToString(bc.masterKey))
	cmd.Env = append(cmd.Env, bc.c.ServeEnv...)
	cmd.Stderr = bc.env.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start serve: %w", err)
	}
	s := &benchServer{cmd: cmd, acks: make(chan string, 4)}
	found := make(chan error, 1)
	go func() {
		// The child's stdout, read to its end: the line that says where
		// it listens, then the CPU profile's acknowledgements.
		defer close(s.acks)
		out := bufio.NewReader(stdout)
		listening := false
		for {
			line, err := out.ReadString('\n')
			line = strings.TrimSpace(line)
			if _, url, ok := strings.Cut(line, " listening on "); ok && !listening {
				s.URL, listening = url, true
				found <- nil
			} else if strings.HasPrefix(line, "cpu profile ") {
				select {
				case s.acks <- line:
				default: // nobody asked: not the bench's signal
				}
			}
			if err != nil {
				if !listening {
					found <- fmt.Errorf("bench: serve exited before listening: %w", err)
				}
				return
			}
		}
	}()
	select {
	case err = <-found:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(2 * time.Minute):
		err = errors.New("bench: serve did not start within 2 minutes")
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return s, nil
}

// signalProfiles sends sig to every child server and waits until each
// says a line starting with ack: "cpu profile started" once it profiles,
// "cpu profile written" once its file is whole.
func signalProfiles(ctx context.Context, servers []*benchServer, sig os.Signal, ack string) error {
	for _, s := range servers {
		if s.cmd == nil {
			continue
		}
		if err := s.cmd.Process.Signal(sig); err != nil {
			return fmt.Errorf("bench: cpuprofile: signal serve: %w", err)
		}
	}
	for _, s := range servers {
		if s.cmd == nil {
			continue
		}
		select {
		case line, ok := <-s.acks:
			if !ok {
				return errors.New("bench: cpuprofile: serve exited")
			}
			if !strings.HasPrefix(line, ack) {
				return fmt.Errorf("bench: cpuprofile: serve said %q, want %q", line, ack)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Minute):
			return fmt.Errorf("bench: cpuprofile: serve did not say %q within a minute of the signal", ack)
		}
	}
	return nil
}

// serverCPU is the CPU time the child servers have used so far (0 for
// in-process servers).
func serverCPU(servers []*benchServer) time.Duration {
	var d time.Duration
	for _, s := range servers {
		if s.cmd != nil {
			if t, err := procstat.ProcessCPU(s.cmd.Process.Pid); err == nil {
				d += t
			}
		}
	}
	return d
}

// pgBackends reads the CPU time of the PostgreSQL backends serving one
// database, through pg_stat_activity and /proc: PostgreSQL runs on this
// machine in a benchmark, and its work per delivery is part of the cost.
type pgBackends struct {
	conn *pgx.Conn
	db   string
}

// newPGBackends connects to adminURL (not to db, so the meter's own
// backend is not counted).
func newPGBackends(ctx context.Context, adminURL, dbURL string) (*pgBackends, error) {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, err
	}
	return &pgBackends{conn: conn, db: cfg.Database}, nil
}

// sample returns each backend's CPU time so far, by pid.
func (p *pgBackends) sample(ctx context.Context) map[int]time.Duration {
	rows, err := p.conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, p.db)
	if err != nil {
		return nil
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil
	}
	m := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if t, err := procstat.ProcessCPU(int(pid)); err == nil {
			m[int(pid)] = t
		}
	}
	return m
}

// since is the CPU the backends of now used after before (a backend that
// started in between counts from zero; one that ended is lost, which the
// servers' pools make rare).
func since(before, now map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range now {
		d += t - before[pid]
	}
	return d
}

func (p *pgBackends) close() { p.conn.Close(context.Background()) }

// serverRSS is the sum of the child servers' peak RSS in MB.
func serverRSS(servers []*benchServer) float64 {
	var mb float64
	for _, s := range servers {
		if s.cmd != nil {
			mb += peakRSSMB(strconv.Itoa(s.cmd.Process.Pid))
		}
	}
	return mb
}

// serverMaxRSS is the largest child server's peak RSS in MB.
func serverMaxRSS(servers []*benchServer) float64 {
	var mb float64
	for _, s := range servers {
		if s.cmd != nil {
			mb = max(mb, peakRSSMB(strconv.Itoa(s.cmd.Process.Pid)))
		}
	}
	return mb
}

package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
	"github.com/longhook/longhook/internal/leader"
	"github.com/longhook/longhook/internal/publish"
)

// Publisher accepts job events; *publish.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, projectID string, in []publish.Input) ([]publish.Result, error)
}

// Config configures a Service. Store, Publisher and Dir are required;
// every other field has the documented default.
type Config struct {
	// Store persists jobs, files and upload sessions.
	Store core.JobStore
	// Publisher accepts the jobs' events.
	Publisher Publisher
	// Dir holds temporary files (Dir/tmp: videos being rendered) and, when
	// Store is not a core.BlobStore, the contents of files (Dir/files) and
	// of resumable uploads in progress (Dir/uploads). A core.BlobStore
	// (PostgreSQL) keeps contents in the database instead, so that every
	// instance sharing it serves every file.
	Dir string
	// Policy validates webhook_config URIs; use the publisher's policy.
	Policy core.AddressPolicy
	// Executor produces model output. Default: an executor.Simulator.
	Executor executor.Executor
	// Clock stamps jobs and drives timers. Default: core.SystemClock.
	Clock core.Clock
	// Logger gets one line per job transition and errors. Default: discard.
	Logger *slog.Logger
	// TimeScale divides the batch window (--time-scale). Default 1.
	TimeScale float64
	// Owner identifies this runner in job leases. Default: a random id.
	Owner string
	// Workers caps jobs executing at once in this process (default 16).
	Workers int
	// BatchParallelism caps requests of one batch in flight (default 4).
	BatchParallelism int
	// BatchWindow is how long a batch may take before it expires (default
	// 48 h, divided by TimeScale).
	BatchWindow time.Duration
	// LeaseTTL is how long a runner's claim on a job holds without renewal
	// (default 30 s, real time on Clock, not scaled).
	LeaseTTL time.Duration
	// MaxRuns is how many times a job may be started (resumes included)
	// before it fails as aborted (default 3).
	MaxRuns int
	// FileTTL is how long uploaded and generated files are kept (default
	// 48 h, like Gemini; not scaled, so results outlive a compressed run).
	FileTTL time.Duration
	// MaxUploadBytes limits one file (default 2 GiB).
	MaxUploadBytes int64
	// PollInterval is the runner's safety-net poll (default 1 s).
	PollInterval time.Duration
	// SoleRunner declares that no other process runs jobs on this store
	// (SQLite: !Capabilities().SharedAcrossProcesses). Run's first claim
	// then takes over jobs left running by a crashed process at once,
	// instead of waiting for their leases to run out.
	SoleRunner bool
}

// microClock reads its clock to the microsecond, the precision both stores
// keep: a job's or file's times then read the same in the answer that
// created it as on every later GET.
type microClock struct{ core.Clock }

func (c microClock) Now() time.Time { return c.Clock.Now().Truncate(time.Microsecond) }

func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = core.SystemClock{}
	}
	c.Clock = microClock{c.Clock}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 1
	}
	if c.Executor == nil {
		c.Executor = executor.NewSimulator(executor.SimulatorConfig{Clock: c.Clock, Scale: c.TimeScale})
	}
	if c.Owner == "" {
		c.Owner = "jobs-" + core.NewID()[:12]
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.BatchParallelism <= 0 {
		c.BatchParallelism = 4
	}
	if c.BatchWindow <= 0 {
		c.BatchWindow = 48 * time.Hour
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.MaxRuns <= 0 {
		c.MaxRuns = 3
	}
	if c.FileTTL <= 0 {
		c.FileTTL = 48 * time.Hour
	}
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 2 << 30
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("jobs: Config.Store is required"))
	}
	if c.Publisher == nil {
		errs = append(errs, errors.New("jobs: Config.Publisher is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("jobs: Config.Dir is required"))
	}
	return errors.Join(errs...)
}

// Service is the jobs feature: the domain operations internal/api serves
// (create, get, list, cancel and delete jobs; files and uploads), the
// runner and the leader's periodic tasks.
type Service struct {
	cfg    Config
	store  core.JobStore
	blobs  blobs // file contents
	log    *slog.Logger
	window time.Duration // batch window after scaling

	wake chan struct{} // new runnable work

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // executions in this process
	claimed map[string]bool                    // the runner's own (not foreground interactions)
	wg      sync.WaitGroup                     // the runner's execution goroutines
}

// New returns a Service. It creates Dir/tmp, and Dir/files and Dir/uploads
// unless the store keeps file contents, and clears Dir/tmp of a crashed
// predecessor's leftovers.
func New(cfg Config) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	subs, where := []string{"tmp", "files", "uploads"}, "dir"
	if _, ok := cfg.Store.(core.BlobStore); ok {
		subs, where = subs[:1], "database"
	}
	cfg.Logger.Info("jobs.file_contents", slog.String("in", where), slog.String("dir", cfg.Dir))
	for _, sub := range subs {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("jobs: %w", err)
		}
	}
	s := &Service{
		cfg:     cfg,
		store:   cfg.Store,
		blobs:   newBlobs(cfg),
		log:     cfg.Logger,
		window:  time.Duration(float64(cfg.BatchWindow) / cfg.TimeScale),
		wake:    make(chan struct{}, 1),
		running: map[string]context.CancelCauseFunc{},
		claimed: map[string]bool{},
	}
	if err := s.sweepTemp(cfg.Clock.Now()); err != nil {
		return nil, err
	}
	if err := s.moveLegacyFiles(); err != nil {
		return nil, err
	}
	return s, nil
}

// moveLegacyFiles moves file contents kept on disk under their id alone
// to their project's directory (see diskBlobs.moveLegacyFiles).
func (s *Service) moveLegacyFiles() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, ok := s.blobs.(*diskBlobs)
	if sb, isStore := s.blobs.(*storeBlobs); isStore {
		d, ok = sb.legacy, true
	}
	if !ok {
		return nil
	}
	return d.moveLegacyFiles(ctx)
}

// Owner returns the runner's lease owner id.
func (s *Service) Owner() string { return s.cfg.Owner }

// MaxUploadBytes is the size limit of one file.
func (s *Service) MaxUploadBytes() int64 { return s.cfg.MaxUploadBytes }

// notify wakes the runner.
func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Tasks returns the leader's periodic work (internal/leader): batch
// expiry, and the sweep of expired files and abandoned uploads.
func (s *Service) Tasks() []leader.Task {
	return []leader.Task{
		{Name: "jobs.expire", Run: s.ExpireBatches},
		{Name: "jobs.sweep_files", Run: s.SweepFiles},
	}
}

// track registers a running execution so that cancel and lease loss can
// stop it.
func (s *Service) track(id string, cancel context.CancelCauseFunc) {
	s.mu.Lock()
	s.running[id] = cancel
	s.mu.Unlock()
}

func (s *Service) untrack(id string) {
	s.mu.Lock()
	delete(s.running, id)
	delete(s.claimed, id)
	s.mu.Unlock()
}

// stop cancels the local execution of a job, if any.
func (s *Service) stop(id string, cause error) {
	s.mu.Lock()
	cancel := s.running[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// runningIDs lists the jobs executing here.
func (s *Service) runningIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.running))
}

// claimedIDs lists the jobs the runner executes (foreground interactions
// excluded: their requests own them).
func (s *Service) claimedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.claimed))
}

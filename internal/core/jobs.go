package core

import (
	"context"
	"encoding/json"
	"time"
)

// JobKind is the kind of a long-running job (docs/contract.md §11).
type JobKind string

// Job kinds.
const (
	JobBatch       JobKind = "batch"       // batches/{id}
	JobVideo       JobKind = "video"       // models/{model}/operations/{id}
	JobInteraction JobKind = "interaction" // interactions/{id}
)

// JobState is the life-cycle state of a job, common to every kind; the API
// spells it per kind (BATCH_STATE_RUNNING, "in_progress", done:false...).
//
//	pending ──claim──► running ──► succeeded | failed
//	   │                  │  └───► requires_action (interactions: waiting for
//	   │                  │        a function result; settled, not terminal)
//	   │                  │                │
//	   ├──────────────────┴────────────────┴──► cancelled (user, or a delete)
//	   └──────────────────┴──► expired (batch window)
//
// A job whose runner dies stays running with an expired lease and is
// claimed again (resumed) or, after too many runs, failed.
type JobState string

// Job states.
const (
	JobPending        JobState = "pending"
	JobRunning        JobState = "running"
	JobRequiresAction JobState = "requires_action"
	JobSucceeded      JobState = "succeeded"
	JobFailed         JobState = "failed"
	JobCancelled      JobState = "cancelled"
	JobExpired        JobState = "expired"
)

// Public is the state as the API shows a job of kind k: BATCH_STATE_* for
// batches, the interaction status for interactions, and for video
// operations (which have only done or not) "done" or "running". Error
// messages and the console name states this way, never by the internal
// names.
func (s JobState) Public(k JobKind) string {
	switch k {
	case JobBatch:
		return s.BatchState()
	case JobInteraction:
		return s.InteractionStatus()
	}
	if s.Terminal() {
		return "done"
	}
	return "running"
}

// BatchState is the BATCH_STATE_* spelling of s.
func (s JobState) BatchState() string {
	switch s {
	case JobPending:
		return "BATCH_STATE_PENDING"
	case JobRunning:
		return "BATCH_STATE_RUNNING"
	case JobSucceeded:
		return "BATCH_STATE_SUCCEEDED"
	case JobFailed:
		return "BATCH_STATE_FAILED"
	case JobCancelled:
		return "BATCH_STATE_CANCELLED"
	case JobExpired:
		return "BATCH_STATE_EXPIRED"
	}
	return "BATCH_STATE_UNSPECIFIED"
}

// InteractionStatus is the Interactions API's spelling of s.
func (s JobState) InteractionStatus() string {
	switch s {
	case JobPending, JobRunning:
		return "in_progress"
	case JobRequiresAction:
		return "requires_action"
	case JobSucceeded:
		return "completed"
	case JobCancelled:
		return "cancelled"
	}
	return "failed"
}

// Terminal reports whether s is final: no transition leaves it.
func (s JobState) Terminal() bool {
	switch s {
	case JobSucceeded, JobFailed, JobCancelled, JobExpired:
		return true
	}
	return false
}

// Settled reports whether a runner has nothing left to do for s: terminal,
// or an interaction waiting for its client.
func (s JobState) Settled() bool { return s.Terminal() || s == JobRequiresAction }

// CanMoveTo reports whether a job in state s may settle in state t: a
// pending or running job in any settled state; an interaction waiting in
// requires_action only in cancelled (the user gives up on it: that is then
// its one terminal event, which an answer would otherwise have brought); a
// terminal job in none.
func (s JobState) CanMoveTo(t JobState) bool {
	switch {
	case s.Terminal():
		return false
	case s == JobRequiresAction:
		return t == JobCancelled
	}
	return t.Settled()
}

// JobEvent is an event a job transition produced and has not yet been
// confirmed published: the job's outbox. It is stored with the transition
// in one transaction and cleared after the publish, so a crash between the
// two re-publishes it (under the same idempotency key) instead of losing it.
type JobEvent struct {
	Type string `json:"type"`
	// Seq is the job's data.sequence for this event.
	Seq int `json:"seq"`
	// Data is the event's data object without user_metadata (the publisher
	// adds it from the job's webhook config).
	Data json.RawMessage `json:"data"`
	// Time is when the transition happened (the envelope timestamp).
	Time time.Time `json:"time"`
	// Terminal marks the job's one terminal event.
	Terminal bool `json:"terminal,omitempty"`
}

// Job is one long-running job: a batch, a video generation or a background
// interaction. Request and Result are kind-specific JSON owned by the jobs
// package; the store keeps them opaque.
type Job struct {
	ID          string
	ProjectID   string
	Kind        JobKind
	State       JobState
	Model       string // "models/gemini-..." or the bare model id
	DisplayName string
	// ParentID is an interaction's previous_interaction_id.
	ParentID string
	Request  json.RawMessage
	Result   json.RawMessage
	// ErrorCode and ErrorMessage describe a failed job.
	ErrorCode    string
	ErrorMessage string
	// WebhookConfig, when set, sends the job's events only to its URIs.
	WebhookConfig *WebhookConfig
	// OutputFile is the result file's id (batch results, video).
	OutputFile string
	// Sequence is the data.sequence of the job's latest event.
	Sequence int
	// Outbox is the event waiting to be published (nil when none).
	Outbox *JobEvent
	// TerminalEmitted is set, with Outbox cleared, once the terminal event
	// is durably published.
	TerminalEmitted bool
	// Runs counts how often a runner started the job (resumes after a
	// crash included).
	Runs int
	// LeaseOwner holds a running job; LeaseExpire is when another runner
	// may take it over.
	LeaseOwner  string
	LeaseExpire time.Time
	CreateTime  time.Time
	UpdateTime  time.Time
	StartTime   time.Time
	EndTime     time.Time
	// ExpireTime is when an unfinished batch expires (zero: never).
	ExpireTime time.Time
	// TraceParent is the W3C traceparent of the request that created the
	// job ("" when tracing was off): each execution continues its trace.
	TraceParent string
}

// File is a stored file of the Files API: an upload, a batch result or a
// generated video. Its contents live in the database when the store is a
// BlobStore, on the local disk of internal/jobs otherwise.
type File struct {
	ID          string
	ProjectID   string
	DisplayName string
	MIMEType    string
	SizeBytes   int64
	SHA256      []byte
	Source      string // UPLOADED or GENERATED
	CreateTime  time.Time
	UpdateTime  time.Time
	ExpireTime  time.Time // zero: never
}

// Upload is a resumable upload session (X-Goog-Upload-Protocol: resumable).
type Upload struct {
	ID        string // the upload_id in the session URL
	ProjectID string
	// File is the metadata the file will be created with.
	File File
	// Size is the declared total size (-1 when unknown); Received counts
	// the bytes stored so far.
	Size       int64
	Received   int64
	CreateTime time.Time
	UpdateTime time.Time
}

// ListJobsParams selects a page of a project's jobs, newest first (ids
// sort by creation time).
type ListJobsParams struct {
	ProjectID string
	Kinds     []JobKind // empty: every kind
	BeforeID  string    // exclusive cursor
	Limit     int
}

// ClaimJobsParams asks for runnable jobs: pending, or running with an
// expired lease.
type ClaimJobsParams struct {
	Owner string
	Now   time.Time
	Limit int
	// LeaseUntil is the lease expiry to store with the claim.
	LeaseUntil time.Time
	// TakeOver also claims running jobs whose unexpired lease belongs to
	// another owner: for a runner that knows it is the only one using the
	// store, every such lease belongs to a process that died.
	TakeOver bool
}

// JobStore is the part of Store that persists jobs, files and upload
// sessions (what internal/jobs needs). A driver whose store is shared by
// several processes also implements BlobStore, for the contents of files.
type JobStore interface {
	// CreateJob inserts j. ErrAlreadyExists if the id is taken.
	CreateJob(ctx context.Context, j *Job) error
	// GetJob returns a job of the project (any project when projectID is
	// empty), ErrNotFound otherwise.
	GetJob(ctx context.Context, projectID, id string) (*Job, error)
	ListJobs(ctx context.Context, p ListJobsParams) ([]*Job, error)
	// UpdateJob loads the job, calls fn to change it and writes every field
	// back in the same transaction. If fn returns an error nothing changes
	// and that error is returned.
	UpdateJob(ctx context.Context, projectID, id string, fn func(*Job) error) (*Job, error)
	// DeleteJob removes a job of the project.
	DeleteJob(ctx context.Context, projectID, id string) error
	// ClaimJobs leases up to Limit runnable jobs to Owner, oldest first,
	// setting them running and counting the run.
	ClaimJobs(ctx context.Context, p ClaimJobsParams) ([]*Job, error)
	// ExtendJobLeases moves the lease of Owner's running jobs among ids to
	// until and returns the ids it did not extend (no longer running or no
	// longer Owner's).
	ExtendJobLeases(ctx context.Context, owner string, ids []string, until time.Time) (lost []string, err error)
	// JobsWithOutbox returns up to limit jobs whose outbox is not empty.
	JobsWithOutbox(ctx context.Context, limit int) ([]*Job, error)
	// ExpiredJobs returns up to limit unsettled jobs whose ExpireTime is
	// set and at or before now.
	ExpiredJobs(ctx context.Context, now time.Time, limit int) ([]*Job, error)
	// NextJobWake returns the earliest lease expiry of a running job, or
	// ok=false when there is none.
	NextJobWake(ctx context.Context) (t time.Time, ok bool, err error)

	// CreateFile creates f; ErrAlreadyExists if f's project has a file of
	// that id (ids are unique per project: another project's is no bar).
	CreateFile(ctx context.Context, f *File) error
	// GetFile returns a file of the project (when projectID is empty, the
	// first file of that id in any project: for maintenance, never for a
	// caller's request).
	GetFile(ctx context.Context, projectID, id string) (*File, error)
	// ListFiles lists a project's files newest first, before the exclusive
	// cursor beforeID.
	ListFiles(ctx context.Context, projectID, beforeID string, limit int) ([]*File, error)
	// DeleteFile removes a file of the project (the files of that id in
	// every project when projectID is empty), with its contents in a
	// BlobStore.
	DeleteFile(ctx context.Context, projectID, id string) error
	// ExpiredFiles returns up to limit files whose ExpireTime is set and at
	// or before now (any project).
	ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]*File, error)

	CreateUpload(ctx context.Context, u *Upload) error
	GetUpload(ctx context.Context, id string) (*Upload, error)
	// AdvanceUpload sets Received to to, if it is from; ErrFailedPrecondition
	// otherwise (a concurrent or out-of-order chunk).
	AdvanceUpload(ctx context.Context, id string, from, to int64, now time.Time) error
	// DeleteUpload removes a session, with its bytes in a BlobStore.
	DeleteUpload(ctx context.Context, id string) error
	// StaleUploads returns up to limit sessions last updated before cutoff.
	StaleUploads(ctx context.Context, cutoff time.Time, limit int) ([]*Upload, error)
}

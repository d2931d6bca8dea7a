// Package jobs runs longhook's long-running jobs — batches, video
// generation and background interactions — and the files that hold their
// inputs and outputs, and emits their lifecycle events through the
// publisher (docs/contract.md §3, §5, §11). It is the domain behind the
// Gemini-compatible HTTP APIs that internal/api serves: its operations take
// typed inputs (BatchInput, VideoInput, InteractionInput, FileMeta) and
// return core.Job and core.File values and core errors; it knows nothing of
// HTTP.
//
// # Pieces
//
//   - Service is the whole feature: New builds it from a Config; its
//     methods create, read, cancel and delete jobs and files; Run is the
//     runner, and Tasks are the leader's periodic work (batch expiry, file
//     and upload sweeps).
//   - An executor.Executor produces the model output (package executor):
//     Simulator (default, deterministic, with failure markers), OpenAI (any
//     OpenAI-compatible /v1/chat/completions server) and Command (an
//     operator program that renders videos); Combine mixes one for text and
//     one for video.
//   - core.JobStore persists jobs, files and upload sessions. File contents
//     (uploads, batch input and results, videos) live in the database when
//     the store is a core.BlobStore (PostgreSQL: any instance serves any
//     file and runs any batch), under Config.Dir otherwise (SQLite); see
//     blobs.
//
// # State machine
//
// Every kind shares core.JobState:
//
//	created ─► pending ─claim─► running ─┬─► succeeded        (one terminal event)
//	              │                │     ├─► failed
//	              │                │     └─► requires_action  (interactions; settled)
//	              │                │               │
//	              └────────────────┴───────────────┴─► cancelled
//	              └────────────────┴─► expired
//
// core.JobState.CanMoveTo holds the transitions. An interaction in
// requires_action is answered by a new interaction (its continuation),
// recorded on it as InteractionResult.AnsweredBy under its row lock before
// the continuation is created; until then it can be cancelled, and after
// it cannot (the continuation brings the job's terminal event), so an
// answer racing a cancel has one winner. Deleting a job that is not
// terminal cancels it first (an answered interaction is deleted as it is).
//
// The API spells the state per kind: BATCH_STATE_* for batches, done/error
// on video operations, in_progress|requires_action|completed|failed|
// cancelled on interactions.
//
// # Events: exactly one terminal event per job
//
// A transition that emits (terminal, or requires_action) is one
// UpdateJob transaction that changes the state, increments the job's
// sequence and stores the event in the job's outbox. The publish follows
// with IdempotencyKey "job:{id}:terminal" (or "job:{id}:{seq}" for
// requires_action), and a second UpdateJob clears the outbox and sets
// TerminalEmitted. A crash anywhere in between leaves the outbox set, and
// the runner re-publishes it on start: the publisher answers a repeated
// idempotency key with the original event, so the receiver sees it once.
// Transitions check the current state inside the transaction, so a cancel
// racing a completion, an expiry, a delete or an answer produces one
// terminal state and one event, never two.
//
// data.sequence numbers a job's events 1, 2, 3…; an interaction continued
// through previous_interaction_id continues its predecessor's numbering, so
// a receiver can order a whole function-calling conversation
// (requires_action = n, completed = n+1).
//
// Event data (design choices where Gemini publishes nothing): id is the
// resource name (batches/{id}, models/{model}/operations/{id}) or the bare
// interaction id; error_code is the Google status name (e.g. INTERNAL,
// INVALID_ARGUMENT); video.generated carries output_file_uri and its alias
// video_uri (the download URI the SDKs accept) and file_name (files/{id}).
// A video that fails emits video.failed (an extension outside Gemini's
// seven types, like the two *.cancelled: in the catalog, so a static
// webhook may subscribe to it).
//
// # Runner, leases and restarts
//
// Run claims runnable jobs (pending, or running with an expired lease) up
// to Config.Workers, executes each in its own goroutine and renews the
// leases every LeaseTTL/3. A job whose lease cannot be renewed (cancelled,
// expired, taken over) has its execution cancelled. On shutdown the runner
// cancels executions and releases their leases, so the next start resumes
// them at once; after a crash the lease runs out first. A job started more
// than MaxRuns times fails with error_code ABORTED instead of looping.
// Execution is idempotent: a batch's output file has a fixed id
// (batch-{job id}), so a resumed run overwrites a half-written one.
package jobs

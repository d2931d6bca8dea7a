package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// Proto type URLs of the batch operation, as Gemini returns them.
const (
	batchMetadataType = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
	batchOutputType   = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
	// maxInlinedResults bounds the results file a GET inlines.
	maxInlinedResults = 8 << 20
)

// batchCreateBody is POST /{v}/models/{model}:batchGenerateContent. The
// SDKs send lowerCamel proto-JSON; snake_case is accepted too.
type batchCreateBody struct {
	Batch *batchSpec `json:"batch"`
}

type batchSpec struct {
	Name           string             `json:"name"`
	Model          string             `json:"model"`
	DisplayName    string             `json:"displayName"`
	DisplayNameS   string             `json:"display_name"`
	InputConfig    *batchInput        `json:"inputConfig"`
	InputConfigS   *batchInput        `json:"input_config"`
	WebhookConfig  *wireWebhookConfig `json:"webhookConfig"`
	WebhookConfigS *wireWebhookConfig `json:"webhook_config"`
	Priority       json.RawMessage    `json:"priority"`
}

type batchInput struct {
	FileName  string         `json:"fileName"`
	FileNameS string         `json:"file_name"`
	Requests  *batchRequests `json:"requests"`
}

type batchRequests struct {
	Requests []batchEntry `json:"requests"`
}

// batchEntry is one request of a batch: inline ({"request","metadata"}) or
// a line of an input file ({"key","request"}).
type batchEntry struct {
	Key      string          `json:"key,omitempty"`
	Request  json.RawMessage `json:"request"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// batchJob is a batch's stored request.
type batchJob struct {
	Entries   []batchEntry `json:"entries,omitempty"`
	InputFile string       `json:"input_file,omitempty"`
}

// batchResult is a batch's stored result.
type batchResult struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// entryKey is the key of entry i: its own key, metadata.key, else its
// 1-based position.
func entryKey(e *batchEntry, i int) string {
	if e.Key != "" {
		return e.Key
	}
	var m map[string]any
	if json.Unmarshal(e.Metadata, &m) == nil {
		if k, ok := m["key"].(string); ok && k != "" {
			return k
		}
	}
	return strconv.Itoa(i + 1)
}

func (s *Service) createBatch(r *http.Request, key core.APIKey) (any, error) {
	model := strings.TrimPrefix(r.PathValue("id"), "models/")
	var body batchCreateBody
	if err := api.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	b := body.Batch
	if b == nil {
		return nil, core.Invalid("batch", "batch is required: {\"batch\": {\"inputConfig\": ...}}")
	}
	display := firstNonEmpty(b.DisplayName, b.DisplayNameS)
	if len(display) > 512 {
		return nil, core.Invalid("batch.display_name", "batch.display_name is longer than 512 characters")
	}
	in := b.InputConfig
	if in == nil {
		in = b.InputConfigS
	}
	if in == nil {
		return nil, core.Invalid("batch.input_config", "batch.input_config is required: requests.requests[] or file_name")
	}
	fileName := firstNonEmpty(in.FileName, in.FileNameS)
	var req batchJob
	switch {
	case fileName != "" && in.Requests != nil:
		return nil, core.Invalid("batch.input_config", "batch.input_config takes either requests or file_name, not both")
	case fileName != "":
		id := strings.TrimPrefix(fileName, "files/")
		if _, err := s.store.GetFile(r.Context(), key.ProjectID, id); err != nil {
			if errors.Is(err, core.ErrNotFound) {
				return nil, core.Invalid("batch.input_config.file_name", "batch.input_config.file_name: files/%s does not exist", id)
			}
			return nil, err
		}
		req.InputFile = id
	case in.Requests == nil || len(in.Requests.Requests) == 0:
		return nil, core.Invalid("batch.input_config.requests", "batch.input_config.requests.requests must hold at least one request")
	default:
		for i, e := range in.Requests.Requests {
			if _, err := parseGenerateRequest(e.Request, model); err != nil {
				return nil, core.Invalid("batch.input_config.requests", "batch.input_config.requests.requests[%d]: %v", i, err)
			}
		}
		req.Entries = in.Requests.Requests
	}
	wc := b.WebhookConfig
	if wc == nil {
		wc = b.WebhookConfigS
	}
	cfg, err := s.config("batch.webhook_config", wc)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j := &core.Job{ID: core.NewSortableID(now), ProjectID: key.ProjectID, Kind: core.JobBatch, State: core.JobPending,
		Model: model, DisplayName: display, Request: raw, WebhookConfig: cfg,
		CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.window)}
	if err := s.store.CreateJob(r.Context(), j); err != nil {
		return nil, err
	}
	s.notify()
	return s.renderBatch(r.Context(), j, false), nil
}

// batchJobOf loads a batch of the project.
func (s *Service) batchJobOf(r *http.Request, key core.APIKey) (*core.Job, error) {
	id := r.PathValue("id")
	j, err := s.store.GetJob(r.Context(), key.ProjectID, id)
	if err != nil || j.Kind != core.JobBatch {
		return nil, orNotFound(core.ErrNotFound, "Batch batches/"+id)
	}
	return j, nil
}

func (s *Service) getBatch(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.batchJobOf(r, key)
	if err != nil {
		return nil, err
	}
	return s.renderBatch(r.Context(), j, true), nil
}

func (s *Service) listBatches(r *http.Request, key core.APIKey) (any, error) {
	return s.listOps(r, key, core.JobBatch)
}

// listOps lists batches (and video operations) as {"operations": [...]}.
func (s *Service) listOps(r *http.Request, key core.APIKey, kinds ...core.JobKind) (any, error) {
	size, cursor, err := pageParams(r)
	if err != nil {
		return nil, err
	}
	js, err := s.store.ListJobs(r.Context(), core.ListJobsParams{ProjectID: key.ProjectID, Kinds: kinds, BeforeID: cursor, Limit: size + 1})
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	if len(js) > size {
		js = js[:size]
		out["nextPageToken"] = nextToken(js[len(js)-1].ID)
	}
	if len(js) > 0 {
		ops := make([]any, len(js))
		for i, j := range js {
			ops[i] = s.renderOperation(r.Context(), j, false)
		}
		out["operations"] = ops
	}
	return out, nil
}

func (s *Service) cancelBatch(r *http.Request, key core.APIKey) (any, error) {
	_, err := s.cancel(r.Context(), key.ProjectID, r.PathValue("id"), core.JobBatch)
	return nil, err
}

func (s *Service) deleteBatch(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.batchJobOf(r, key)
	if err != nil {
		return nil, err
	}
	return nil, s.deleteJob(r.Context(), j)
}

// deleteJob removes a settled job whose event went out. A job still
// running must be cancelled first (deleting does not cancel, as with
// Gemini); a job whose event is being published is briefly refused.
func (s *Service) deleteJob(ctx context.Context, j *core.Job) error {
	if !j.State.Settled() {
		return preconditionf("%s is still %s; cancel it before deleting it.", resourceName(j), j.State)
	}
	if j.Outbox != nil {
		return &apiError{http.StatusServiceUnavailable, "UNAVAILABLE", resourceName(j) + " is publishing its last event; retry shortly."}
	}
	return orNotFound(s.store.DeleteJob(ctx, j.ProjectID, j.ID), resourceName(j))
}

// cancel cancels a pending or running job of kind: the job becomes
// cancelled and emits its cancelled event once. Cancelling a cancelled job
// succeeds again; other settled jobs are FAILED_PRECONDITION.
func (s *Service) cancel(ctx context.Context, projectID, id string, kind core.JobKind) (*core.Job, error) {
	j, err := s.store.GetJob(ctx, projectID, id)
	if err != nil || j.Kind != kind {
		return nil, notFoundf("%s %s was not found.", kind, id)
	}
	if j.State == core.JobCancelled {
		return j, nil
	}
	j, err = s.settle(ctx, projectID, id, "", outcome{state: core.JobCancelled, code: "CANCELLED", message: "Cancelled by the user."})
	if errors.Is(err, errSettled) {
		cur, gerr := s.store.GetJob(ctx, projectID, id)
		if gerr == nil && cur.State == core.JobCancelled {
			return cur, nil
		}
		state := "settled"
		if gerr == nil {
			state = string(cur.State)
		}
		return nil, preconditionf("%s %s is %s; only pending or running jobs can be cancelled.", kind, id, state)
	}
	if err != nil {
		return nil, err
	}
	s.stop(id, errSettled)
	return j, nil
}

// batchState is the BATCH_STATE_* spelling of a job state.
func batchState(st core.JobState) string {
	switch st {
	case core.JobPending:
		return "BATCH_STATE_PENDING"
	case core.JobRunning:
		return "BATCH_STATE_RUNNING"
	case core.JobSucceeded:
		return "BATCH_STATE_SUCCEEDED"
	case core.JobFailed:
		return "BATCH_STATE_FAILED"
	case core.JobCancelled:
		return "BATCH_STATE_CANCELLED"
	case core.JobExpired:
		return "BATCH_STATE_EXPIRED"
	}
	return "BATCH_STATE_UNSPECIFIED"
}

// renderBatch is the batch as the operation-shaped resource the SDKs
// read: name, metadata{@type, model, displayName, state, times, batchStats,
// output}, done, and response or error. inline adds the results of an
// inline-input batch as output.inlinedResponses.
func (s *Service) renderBatch(ctx context.Context, j *core.Job, inline bool) map[string]any {
	var req batchJob
	_ = json.Unmarshal(j.Request, &req)
	var res batchResult
	_ = json.Unmarshal(j.Result, &res)
	total := len(req.Entries)
	if res.Total > 0 {
		total = res.Total
	}
	meta := map[string]any{
		"@type":      batchMetadataType,
		"name":       "batches/" + j.ID,
		"model":      "models/" + j.Model,
		"state":      batchState(j.State),
		"createTime": timestamp(j.CreateTime),
		"updateTime": timestamp(j.UpdateTime),
		"batchStats": map[string]string{
			"requestCount":           strconv.Itoa(total),
			"successfulRequestCount": strconv.Itoa(res.Succeeded),
			"failedRequestCount":     strconv.Itoa(res.Failed),
			"pendingRequestCount":    strconv.Itoa(max(total-res.Succeeded-res.Failed, 0)),
		},
	}
	if j.DisplayName != "" {
		meta["displayName"] = j.DisplayName
	}
	if !j.EndTime.IsZero() {
		meta["endTime"] = timestamp(j.EndTime)
	}
	if req.InputFile != "" {
		meta["inputConfig"] = map[string]any{"fileName": "files/" + req.InputFile}
	}
	op := map[string]any{"name": "batches/" + j.ID, "metadata": meta, "done": j.State.Terminal()}
	switch {
	case j.State == core.JobSucceeded:
		output := map[string]any{"responsesFile": "files/" + j.OutputFile}
		if inline && req.InputFile == "" {
			if rs := s.inlinedResponses(ctx, j); rs != nil {
				output["inlinedResponses"] = map[string]any{"inlinedResponses": rs}
			}
		}
		meta["output"] = output
		resp := map[string]any{"@type": batchOutputType}
		for k, v := range output {
			resp[k] = v
		}
		op["response"] = resp
	case j.State.Terminal():
		op["error"] = map[string]any{"code": rpcCode(j.ErrorCode), "message": j.ErrorMessage}
	}
	return op
}

// inlinedResponses reads a batch's results file as InlinedResponse
// objects ({response|error, metadata}); nil when it is missing or too
// large.
func (s *Service) inlinedResponses(ctx context.Context, j *core.Job) []any {
	fh, err := s.blobs.Open(ctx, j.ProjectID, j.OutputFile)
	if err != nil {
		return nil
	}
	defer fh.Close()
	if fh.Size() > maxInlinedResults {
		return nil
	}
	var out []any
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64<<10), maxInlinedResults)
	for sc.Scan() {
		var line map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			return nil
		}
		item := map[string]json.RawMessage{}
		for _, k := range []string{"response", "error", "metadata"} {
			if v, ok := line[k]; ok {
				item[k] = v
			}
		}
		out = append(out, item)
	}
	return out
}

// rpcCode maps a Google status name to its google.rpc.Code number.
func rpcCode(status string) int {
	codes := map[string]int{"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
		"NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
		"FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13,
		"UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16}
	if c, ok := codes[status]; ok {
		return c
	}
	return 2
}

// runBatch executes every request of a batch, BatchParallelism at a time,
// and writes one JSONL line per request, in request order, to the output
// file batch-{id}. A fatal executor error fails the batch; so does a batch
// whose every request failed.
func (s *Service) runBatch(ctx context.Context, j *core.Job) (outcome, error) {
	var req batchJob
	if err := json.Unmarshal(j.Request, &req); err != nil {
		return failure("INTERNAL", "the stored batch request is unreadable"), nil
	}
	entries := req.Entries
	if req.InputFile != "" {
		var err error
		if entries, err = s.readBatchInput(ctx, j.ProjectID, req.InputFile); err != nil {
			return outcome{}, err
		}
	}
	lines := make([][]byte, len(entries))
	errs := make([]*Error, len(entries))
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.BatchParallelism)
	var fatalOnce sync.Once
	var fatal *Error
loop:
	for i := range entries {
		select {
		case sem <- struct{}{}:
		case <-gctx.Done():
			break loop
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			line, lineErr, err := s.batchLine(gctx, j, &entries[i], i)
			if err != nil {
				var ee *Error
				if errors.As(err, &ee) && ee.Fatal {
					fatalOnce.Do(func() { fatal = ee; cancel() })
				}
				return
			}
			lines[i], errs[i] = line, lineErr
		}(i)
	}
	wg.Wait()
	if fatal != nil {
		return failure(fatal.Code, fatal.Message), nil
	}
	if err := ctx.Err(); err != nil {
		return outcome{}, err
	}
	res := batchResult{Total: len(entries)}
	for _, e := range errs {
		if e != nil {
			res.Failed++
		} else {
			res.Succeeded++
		}
	}
	if res.Total > 0 && res.Failed == res.Total {
		return failure(errs[0].Code, "Every request of the batch failed; the first: "+errs[0].Message), nil
	}
	return s.writeBatchOutput(ctx, j, lines, res)
}

// batchLine runs one request and renders its output line. lineErr is set
// when the request failed (the line then carries the error); err is set
// when the batch cannot go on (cancelled, or a fatal executor error).
func (s *Service) batchLine(ctx context.Context, j *core.Job, e *batchEntry, i int) (line []byte, lineErr *Error, err error) {
	out := map[string]any{"key": entryKey(e, i)}
	if len(e.Metadata) > 0 {
		out["metadata"] = e.Metadata
	}
	turn, perr := parseGenerateRequest(e.Request, j.Model)
	var reply *Reply
	if perr == nil {
		reply, perr = s.cfg.Executor.Generate(ctx, turn)
	}
	if perr != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var ee *Error
		switch {
		case errors.As(perr, &ee) && ee.Fatal:
			return nil, nil, ee
		case errors.As(perr, &ee):
		case core.IsInvalid(perr):
			ee = &Error{Code: "INVALID_ARGUMENT", Message: perr.Error()}
		default:
			ee = &Error{Code: "INTERNAL", Message: perr.Error()}
		}
		lineErr = ee
		out["error"] = map[string]any{"code": rpcCode(ee.Code), "message": ee.Message, "status": ee.Code}
	} else {
		out["response"] = generateContentResponse(reply, turn.Model)
	}
	line, err = json.Marshal(out)
	return line, lineErr, err
}

// writeBatchOutput writes the results file and returns the success
// outcome.
func (s *Service) writeBatchOutput(ctx context.Context, j *core.Job, lines [][]byte, res batchResult) (outcome, error) {
	id := "batch-" + j.ID
	body := make(net.Buffers, 0, 2*len(lines))
	for _, l := range lines {
		body = append(body, l, newline)
	}
	now := s.cfg.Clock.Now()
	f := &core.File{ID: id, ProjectID: j.ProjectID, DisplayName: "Results of batches/" + j.ID, MIMEType: "application/jsonl",
		Source: sourceGenerated, CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.cfg.FileTTL)}
	if err := s.createFile(ctx, f, &body, true); err != nil {
		return outcome{}, fmt.Errorf("jobs: batch output: %w", err)
	}
	raw, _ := json.Marshal(res)
	return outcome{state: core.JobSucceeded, outputFile: id, result: raw}, nil
}

var newline = []byte{'\n'}

// readBatchInput parses an input file of the project: one {"key",
// "request"} per line. A missing or malformed file is an *Error
// (INVALID_ARGUMENT); a failure to read it is returned as is (INTERNAL).
func (s *Service) readBatchInput(ctx context.Context, projectID, fileID string) ([]batchEntry, error) {
	invalid := func(format string, args ...any) error {
		return &Error{Code: "INVALID_ARGUMENT", Message: fmt.Sprintf(format, args...)}
	}
	fh, err := s.blobs.Open(ctx, projectID, fileID)
	if errors.Is(err, core.ErrNotFound) {
		return nil, invalid("the input file files/%s cannot be read", fileID)
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []batchEntry
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64<<10), 32<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e batchEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || len(e.Request) == 0 {
			return nil, invalid("line %d of files/%s is not a JSON object with a \"request\"", n, fileID)
		}
		out = append(out, e)
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return nil, invalid("files/%s: %v", fileID, err)
	case err != nil:
		return nil, fmt.Errorf("jobs: read files/%s: %w", fileID, err)
	}
	if len(out) == 0 {
		return nil, invalid("the input file files/%s holds no requests", fileID)
	}
	return out, nil
}

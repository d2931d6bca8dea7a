package jobs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// maxInlinedResults bounds the results file InlinedResponses reads.
const maxInlinedResults = 8 << 20

// BatchInput is a new batch: its model, its requests (inline Requests, or
// the lines of the project's file InputFile) and its webhook_config.
type BatchInput struct {
	Model         string
	DisplayName   string
	InputFile     string // a file id (without files/)
	Requests      []BatchEntry
	WebhookConfig *core.WebhookConfig
}

// BatchEntry is one request of a batch: inline ({"request","metadata"})
// or a line of an input file ({"key","request"}).
type BatchEntry struct {
	Key      string          `json:"key,omitempty"`
	Request  json.RawMessage `json:"request"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// BatchRequest is a batch's stored request (core.Job.Request).
type BatchRequest struct {
	Entries   []BatchEntry `json:"entries,omitempty"`
	InputFile string       `json:"input_file,omitempty"`
}

// BatchResult is a batch's stored result (core.Job.Result).
type BatchResult struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
}

// entryKey is the key of entry i: its own key, metadata.key, else its
// 1-based position.
func entryKey(e *BatchEntry, i int) string {
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

// CreateBatch validates and creates a batch of the project, pending for the
// runner.
func (s *Service) CreateBatch(ctx context.Context, projectID string, b BatchInput) (*core.Job, error) {
	if err := core.ValidateModel("model", b.Model); err != nil {
		return nil, err
	}
	if len(b.DisplayName) > 512 {
		return nil, core.Invalid("batch.display_name", "batch.display_name is longer than 512 characters")
	}
	var req BatchRequest
	switch {
	case b.InputFile != "" && b.Requests != nil:
		return nil, core.Invalid("batch.input_config", "batch.input_config takes either requests or file_name, not both")
	case b.InputFile != "":
		id := strings.TrimPrefix(b.InputFile, "files/")
		if _, err := s.store.GetFile(ctx, projectID, id); err != nil {
			if errors.Is(err, core.ErrNotFound) {
				return nil, core.Invalid("batch.input_config.file_name", "batch.input_config.file_name: files/%s does not exist", id)
			}
			return nil, err
		}
		req.InputFile = id
	case len(b.Requests) == 0:
		return nil, core.Invalid("batch.input_config.requests", "batch.input_config.requests.requests must hold at least one request")
	default:
		for i, e := range b.Requests {
			if _, err := parseGenerateRequest(e.Request, b.Model); err != nil {
				return nil, core.Invalid("batch.input_config.requests", "batch.input_config.requests.requests[%d]: %v", i, err)
			}
		}
		req.Entries = b.Requests
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j := &core.Job{ID: core.NewSortableID(now), ProjectID: projectID, Kind: core.JobBatch, State: core.JobPending,
		Model: b.Model, DisplayName: b.DisplayName, Request: raw, WebhookConfig: b.WebhookConfig,
		CreateTime: now, UpdateTime: now, ExpireTime: now.Add(s.window)}
	if err := s.createJob(ctx, j); err != nil {
		return nil, err
	}
	s.notify()
	return j, nil
}

// InlinedResponses reads a batch's results file as InlinedResponse
// objects ({response|error, metadata}); nil when it is missing or too
// large.
func (s *Service) InlinedResponses(ctx context.Context, j *core.Job) []any {
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

// RPCCode maps a Google status name to its google.rpc.Code number.
func RPCCode(status string) int {
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
	var req BatchRequest
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
	errs := make([]*executor.Error, len(entries))
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.cfg.BatchParallelism)
	var fatalOnce sync.Once
	var fatal *executor.Error
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
				var ee *executor.Error
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
	res := BatchResult{Total: len(entries)}
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
func (s *Service) batchLine(ctx context.Context, j *core.Job, e *BatchEntry, i int) (line []byte, lineErr *executor.Error, err error) {
	out := map[string]any{"key": entryKey(e, i)}
	if len(e.Metadata) > 0 {
		out["metadata"] = e.Metadata
	}
	turn, perr := parseGenerateRequest(e.Request, j.Model)
	var reply *executor.Reply
	if perr == nil {
		reply, perr = s.cfg.Executor.Generate(ctx, turn)
	}
	if perr != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var ee *executor.Error
		switch {
		case errors.As(perr, &ee) && ee.Fatal:
			return nil, nil, ee
		case errors.As(perr, &ee):
		case core.IsInvalid(perr):
			ee = &executor.Error{Code: "INVALID_ARGUMENT", Message: perr.Error()}
		default:
			ee = &executor.Error{Code: "INTERNAL", Message: perr.Error()}
		}
		lineErr = ee
		out["error"] = map[string]any{"code": RPCCode(ee.Code), "message": ee.Message, "status": ee.Code}
	} else {
		out["response"] = generateContentResponse(reply, turn.Model)
	}
	line, err = json.Marshal(out)
	return line, lineErr, err
}

// writeBatchOutput writes the results file and returns the success
// outcome.
func (s *Service) writeBatchOutput(ctx context.Context, j *core.Job, lines [][]byte, res BatchResult) (outcome, error) {
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
// "request"} per line. A missing or malformed file is an *executor.Error
// (INVALID_ARGUMENT); a failure to read it is returned as is (INTERNAL).
func (s *Service) readBatchInput(ctx context.Context, projectID, fileID string) ([]BatchEntry, error) {
	invalid := func(format string, args ...any) error {
		return &executor.Error{Code: "INVALID_ARGUMENT", Message: fmt.Sprintf(format, args...)}
	}
	fh, err := s.blobs.Open(ctx, projectID, fileID)
	if errors.Is(err, core.ErrNotFound) {
		return nil, invalid("the input file files/%s cannot be read", fileID)
	}
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []BatchEntry
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64<<10), 32<<20)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e BatchEntry
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

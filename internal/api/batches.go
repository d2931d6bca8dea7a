package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
)

// The Batch API (docs/contract.md §11): POST /{v}/models/{model}:batchGenerateContent
// creates a batch; batches are operation-shaped resources, listed with
// video operations under /{v}/operations.

// Proto type URLs of the batch operation, as Gemini returns them.
const (
	batchMetadataType = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
	batchOutputType   = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
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
	Requests []jobs.BatchEntry `json:"requests"`
}

func (s *server) createBatch(r *http.Request, key core.APIKey) (any, error) {
	var body batchCreateBody
	if err := DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	b := body.Batch
	if b == nil {
		return nil, core.Invalid("batch", "batch is required: {\"batch\": {\"inputConfig\": ...}}")
	}
	if b.InputConfig != nil && b.InputConfigS != nil {
		return nil, bothSpellings("batch.input_config", "inputConfig", "input_config")
	}
	if b.DisplayName != "" && b.DisplayNameS != "" {
		return nil, bothSpellings("batch.display_name", "displayName", "display_name")
	}
	in := b.InputConfig
	if in == nil {
		in = b.InputConfigS
	}
	if in != nil && in.FileName != "" && in.FileNameS != "" {
		return nil, bothSpellings("batch.input_config.file_name", "fileName", "file_name")
	}
	if in == nil {
		return nil, core.Invalid("batch.input_config", "batch.input_config is required: requests.requests[] or file_name")
	}
	spec := jobs.BatchInput{Model: strings.TrimPrefix(r.PathValue("id"), "models/"),
		DisplayName: firstNonEmpty(b.DisplayName, b.DisplayNameS), InputFile: firstNonEmpty(in.FileName, in.FileNameS)}
	if in.Requests != nil {
		spec.Requests = in.Requests.Requests
		if spec.Requests == nil {
			spec.Requests = []jobs.BatchEntry{} // given, and empty
		}
	}
	var err error
	if spec.WebhookConfig, err = s.webhookConfig("batch.webhook_config", b.WebhookConfig, b.WebhookConfigS); err != nil {
		return nil, err
	}
	j, err := s.d.Jobs.CreateBatch(r.Context(), key.ProjectID, spec)
	if err != nil {
		return nil, err
	}
	return s.renderBatch(r.Context(), j, false), nil
}

// batchOf loads a batch of the project.
func (s *server) batchOf(r *http.Request, key core.APIKey) (*core.Job, error) {
	id := r.PathValue("id")
	j, err := s.d.Jobs.Job(r.Context(), key.ProjectID, id, core.JobBatch)
	if err != nil {
		return nil, core.OrNotFound(err, "Batch batches/"+id)
	}
	return j, nil
}

func (s *server) getBatch(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.batchOf(r, key)
	if err != nil {
		return nil, err
	}
	return s.renderBatch(r.Context(), j, true), nil
}

func (s *server) listBatches(r *http.Request, key core.APIKey) (any, error) {
	return s.listOperationsOf(r, key, "batches", core.JobBatch)
}

func (s *server) listOperations(r *http.Request, key core.APIKey) (any, error) {
	return s.listOperationsOf(r, key, "operations", core.JobBatch, core.JobVideo)
}

// listOperationsOf lists batches (and video operations) as
// {"operations": [...], "nextPageToken"}.
func (s *server) listOperationsOf(r *http.Request, key core.APIKey, collection string, kinds ...core.JobKind) (any, error) {
	size, cursor, err := s.tokens.page(r.URL.Query(), collection, key.ProjectID)
	if err != nil {
		return nil, err
	}
	js, err := s.d.Jobs.Jobs(r.Context(), core.ListJobsParams{ProjectID: key.ProjectID, Kinds: kinds, BeforeID: cursor, Limit: size + 1})
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	js, more := trimPage(js, size)
	if more {
		out["nextPageToken"] = s.tokens.encode(collection, key.ProjectID, js[len(js)-1].ID)
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

func (s *server) cancelBatch(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	_, err := s.d.Jobs.Cancel(r.Context(), key.ProjectID, id, core.JobBatch)
	return nil, core.OrNotFound(err, "Batch batches/"+id) // the 404 of get
}

func (s *server) deleteBatch(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.batchOf(r, key)
	if err != nil {
		return nil, err
	}
	return nil, s.d.Jobs.DeleteJob(r.Context(), j)
}

// renderBatch is the batch as the operation-shaped resource the SDKs
// read: name, metadata{@type, model, displayName, state, times, batchStats,
// output}, done, and response or error. inline adds the results of an
// inline-input batch as output.inlinedResponses.
func (s *server) renderBatch(ctx context.Context, j *core.Job, inline bool) map[string]any {
	var req jobs.BatchRequest
	_ = json.Unmarshal(j.Request, &req)
	var res jobs.BatchResult
	_ = json.Unmarshal(j.Result, &res)
	total := len(req.Entries)
	if res.Total > 0 {
		total = res.Total
	}
	meta := map[string]any{
		"@type":      batchMetadataType,
		"name":       "batches/" + j.ID,
		"model":      "models/" + j.Model,
		"state":      j.State.BatchState(),
		"createTime": protoTime(j.CreateTime),
		"updateTime": protoTime(j.UpdateTime),
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
		meta["endTime"] = protoTime(j.EndTime)
	}
	if req.InputFile != "" {
		meta["inputConfig"] = map[string]any{"fileName": "files/" + req.InputFile}
	}
	op := map[string]any{"name": "batches/" + j.ID, "metadata": meta, "done": j.State.Terminal()}
	switch {
	case j.State == core.JobSucceeded:
		output := map[string]any{"responsesFile": "files/" + j.OutputFile}
		if inline && req.InputFile == "" {
			if rs := s.d.Jobs.InlinedResponses(ctx, j); rs != nil {
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
		op["error"] = jobs.ErrorObject(j)
	}
	return op
}

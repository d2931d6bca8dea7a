package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

// interactionBody is POST /{v}/interactions (snake_case, as the SDKs send
// it). Fields longhook does not interpret are accepted and echoed back.
type interactionBody struct {
	Model                 string             `json:"model"`
	Agent                 json.RawMessage    `json:"agent"`
	AgentConfig           json.RawMessage    `json:"agent_config"`
	Input                 json.RawMessage    `json:"input"`
	Background            bool               `json:"background"`
	Stream                bool               `json:"stream"`
	Store                 *bool              `json:"store"`
	WebhookConfig         *wireWebhookConfig `json:"webhook_config"`
	PreviousInteractionID string             `json:"previous_interaction_id"`
	SystemInstruction     json.RawMessage    `json:"system_instruction"`
	Tools                 json.RawMessage    `json:"tools"`
	GenerationConfig      json.RawMessage    `json:"generation_config"`
	ResponseFormat        json.RawMessage    `json:"response_format"`
	ResponseMimeType      json.RawMessage    `json:"response_mime_type"`
	ResponseModalities    json.RawMessage    `json:"response_modalities"`
	SafetySettings        json.RawMessage    `json:"safety_settings"`
	ServiceTier           json.RawMessage    `json:"service_tier"`
	Labels                json.RawMessage    `json:"labels"`
	CachedContent         json.RawMessage    `json:"cached_content"`
	ContinuationToken     json.RawMessage    `json:"continuation_token"`
	Environment           json.RawMessage    `json:"environment"`
}

// interactionJob is an interaction's stored request.
type interactionJob struct {
	// Echo holds the request fields the resource echoes verbatim.
	Echo map[string]json.RawMessage `json:"echo,omitempty"`
	// Input is the raw input, returned with include_input=true.
	Input json.RawMessage `json:"input,omitempty"`
	// Contents is this turn's input as Gemini contents.
	Contents   []Content        `json:"contents"`
	Tools      []FunctionDecl   `json:"tools,omitempty"`
	System     string           `json:"system,omitempty"`
	Config     GenerationConfig `json:"config"`
	Background bool             `json:"background"`
}

// interactionResult is an interaction's stored result.
type interactionResult struct {
	Steps []map[string]any `json:"steps"`
	// Output is the model's turn as Gemini content (conversation history
	// for continuations).
	Output  *Content        `json:"output,omitempty"`
	Usage   Usage           `json:"usage"`
	Pending []*FunctionCall `json:"pending,omitempty"` // calls awaiting results
}

func (s *Service) createInteraction(r *http.Request, key core.APIKey) (any, error) {
	var body interactionBody
	if err := api.DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	model := body.Model
	if model == "" && len(body.Agent) > 0 {
		_ = json.Unmarshal(body.Agent, &model)
	}
	switch {
	case model == "" && len(body.Agent) == 0:
		return nil, core.Invalid("model", "model (or agent) is required")
	case body.Stream:
		return nil, core.Invalid("stream", "stream: true is not supported; use background: true and poll, or a webhook_config")
	case body.WebhookConfig != nil && !body.Background:
		return nil, core.Invalid("webhook_config", "webhook_config requires background: true")
	case len(body.Input) == 0:
		return nil, core.Invalid("input", "input is required")
	}
	cfg, err := s.config("webhook_config", body.WebhookConfig)
	if err != nil {
		return nil, err
	}
	var parent *core.Job
	callNames := map[string]string{}
	if body.PreviousInteractionID != "" {
		if parent, err = s.store.GetJob(r.Context(), key.ProjectID, body.PreviousInteractionID); err != nil || parent.Kind != core.JobInteraction {
			return nil, core.Invalid("previous_interaction_id", "previous_interaction_id %q is not an interaction of this project", body.PreviousInteractionID)
		}
		if !parent.State.Settled() {
			return nil, preconditionf("The previous interaction %s is still in progress.", parent.ID)
		}
		for _, c := range pendingCalls(parent) {
			callNames[c.ID] = c.Name
		}
	}
	contents, err := parseInteractionInput(body.Input, callNames)
	if err != nil {
		return nil, err
	}
	if err := checkFunctionResults(parent, contents); err != nil {
		return nil, err
	}
	req := interactionJob{Input: body.Input, Contents: contents, Background: body.Background, Echo: map[string]json.RawMessage{}}
	if req.Tools, err = parseInteractionTools(body.Tools); err != nil {
		return nil, err
	}
	if len(body.SystemInstruction) > 0 {
		if json.Unmarshal(body.SystemInstruction, &req.System) != nil {
			return nil, core.Invalid("system_instruction", "system_instruction must be a string")
		}
	}
	if len(body.GenerationConfig) > 0 {
		if req.Config, err = parseGenerationConfig(body.GenerationConfig); err != nil {
			return nil, core.Invalid("generation_config", "generation_config must be a JSON object")
		}
	}
	for name, v := range map[string]json.RawMessage{"agent": body.Agent, "agent_config": body.AgentConfig,
		"system_instruction": body.SystemInstruction, "tools": body.Tools, "generation_config": body.GenerationConfig,
		"response_format": body.ResponseFormat, "response_mime_type": body.ResponseMimeType,
		"response_modalities": body.ResponseModalities, "safety_settings": body.SafetySettings,
		"service_tier": body.ServiceTier, "labels": body.Labels, "cached_content": body.CachedContent,
		"environment": body.Environment} {
		if len(v) > 0 && string(v) != "null" {
			req.Echo[name] = v
		}
	}
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	j := &core.Job{ID: core.NewSortableID(now), ProjectID: key.ProjectID, Kind: core.JobInteraction, State: core.JobPending,
		Model: body.Model, Request: raw, WebhookConfig: cfg, ParentID: body.PreviousInteractionID,
		CreateTime: now, UpdateTime: now}
	if parent != nil {
		j.Sequence = parent.Sequence // a continuation numbers its events after its predecessor's
	}
	if body.Background {
		if err := s.store.CreateJob(r.Context(), j); err != nil {
			return nil, err
		}
		s.notify()
		return renderInteraction(j, false), nil
	}
	// Foreground: run it in this request, holding the lease like a runner.
	j.State, j.LeaseOwner, j.LeaseExpire, j.Runs, j.StartTime = core.JobRunning, s.cfg.Owner, now.Add(s.cfg.LeaseTTL), 1, now
	if err := s.store.CreateJob(r.Context(), j); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	s.track(j.ID, cancel)
	s.execute(ctx, j)
	s.untrack(j.ID)
	cancel(nil)
	if j, err = s.store.GetJob(context.WithoutCancel(r.Context()), key.ProjectID, j.ID); err != nil {
		return nil, err
	}
	return renderInteraction(j, false), nil
}

// interactionOf loads an interaction of the project.
func (s *Service) interactionOf(r *http.Request, key core.APIKey) (*core.Job, error) {
	id := r.PathValue("id")
	j, err := s.store.GetJob(r.Context(), key.ProjectID, id)
	if err != nil || j.Kind != core.JobInteraction {
		return nil, notFoundf("Interaction %s was not found.", id)
	}
	return j, nil
}

func (s *Service) getInteraction(r *http.Request, key core.APIKey) (any, error) {
	if r.URL.Query().Get("stream") == "true" {
		return nil, core.Invalid("stream", "stream=true is not supported; poll without it")
	}
	j, err := s.interactionOf(r, key)
	if err != nil {
		return nil, err
	}
	return renderInteraction(j, r.URL.Query().Get("include_input") == "true"), nil
}

func (s *Service) cancelInteraction(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.cancel(r.Context(), key.ProjectID, r.PathValue("id"), core.JobInteraction)
	if err != nil {
		return nil, err
	}
	return renderInteraction(j, false), nil
}

func (s *Service) deleteInteraction(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.interactionOf(r, key)
	if err != nil {
		return nil, err
	}
	return nil, s.deleteJob(r.Context(), j)
}

// interactionStatus is the interactions API's spelling of a job state.
func interactionStatus(st core.JobState) string {
	switch st {
	case core.JobPending, core.JobRunning:
		return "in_progress"
	case core.JobRequiresAction:
		return "requires_action"
	case core.JobSucceeded:
		return "completed"
	case core.JobCancelled:
		return "cancelled"
	}
	return "failed"
}

// renderInteraction is the Interaction resource.
func renderInteraction(j *core.Job, includeInput bool) map[string]any {
	var req interactionJob
	_ = json.Unmarshal(j.Request, &req)
	var res interactionResult
	_ = json.Unmarshal(j.Result, &res)
	m := map[string]any{
		"id":      j.ID,
		"status":  interactionStatus(j.State),
		"created": timestamp(j.CreateTime),
		"updated": timestamp(j.UpdateTime),
		"steps":   orEmptySteps(res.Steps),
	}
	for k, v := range req.Echo {
		m[k] = v
	}
	if j.Model != "" {
		m["model"] = j.Model
	}
	if j.ParentID != "" {
		m["previous_interaction_id"] = j.ParentID
	}
	if wc := renderWebhookConfig(j.WebhookConfig); wc != nil {
		m["webhook_config"] = wc
	}
	if includeInput {
		m["input"] = req.Input
	}
	if j.State.Settled() && j.State != core.JobCancelled {
		m["usage"] = map[string]int{
			"total_input_tokens":  res.Usage.PromptTokens,
			"total_output_tokens": res.Usage.OutputTokens,
			"total_tokens":        res.Usage.PromptTokens + res.Usage.OutputTokens,
		}
	}
	if j.State == core.JobFailed || j.State == core.JobExpired {
		m["errors"] = []any{map[string]string{"code": j.ErrorCode, "message": j.ErrorMessage}}
	}
	return m
}

func orEmptySteps(s []map[string]any) []map[string]any {
	if s == nil {
		return []map[string]any{}
	}
	return s
}

// pendingCalls returns the function calls an interaction waits on.
func pendingCalls(j *core.Job) []*FunctionCall {
	if j == nil || j.State != core.JobRequiresAction {
		return nil
	}
	var res interactionResult
	_ = json.Unmarshal(j.Result, &res)
	return res.Pending
}

// requiredAction is the required_action of interaction.requires_action
// events (an extension): the function calls to answer.
func requiredAction(j *core.Job) map[string]any {
	calls := []map[string]any{}
	for _, c := range pendingCalls(j) {
		calls = append(calls, map[string]any{"id": c.ID, "name": c.Name, "arguments": argsOrEmpty(c.Args)})
	}
	return map[string]any{"type": "function_calls", "function_calls": calls}
}

func argsOrEmpty(a json.RawMessage) json.RawMessage {
	if len(a) == 0 {
		return json.RawMessage(`{}`)
	}
	return a
}

// checkFunctionResults requires a continuation of an interaction waiting
// on function calls to answer each of them, and only them.
func checkFunctionResults(parent *core.Job, contents []Content) error {
	pending := map[string]bool{}
	for _, c := range pendingCalls(parent) {
		pending[c.ID] = true
	}
	answered := map[string]bool{}
	for _, c := range contents {
		for _, p := range c.Parts {
			if fr := p.FunctionResponse; fr != nil {
				if len(pending) > 0 && !pending[fr.ID] {
					return core.Invalid("input", "function_result call_id %q answers no pending function call of %s", fr.ID, parent.ID)
				}
				answered[fr.ID] = true
			}
		}
	}
	for _, c := range pendingCalls(parent) {
		if !answered[c.ID] {
			return core.Invalid("input", "input must carry a function_result with call_id %q (function %s): interaction %s requires it", c.ID, c.Name, parent.ID)
		}
	}
	return nil
}

// runInteraction answers one interaction turn: the conversation so far
// (its predecessors through previous_interaction_id) plus this input.
func (s *Service) runInteraction(ctx context.Context, j *core.Job) (outcome, error) {
	turn, err := s.interactionTurn(ctx, j)
	if err != nil {
		if core.IsInvalid(err) {
			return failure("INVALID_ARGUMENT", err.Error()), nil
		}
		return outcome{}, err
	}
	reply, err := s.cfg.Executor.Generate(ctx, turn)
	if err != nil {
		return outcome{}, err
	}
	for i, c := range reply.FunctionCalls() {
		if c.ID == "" {
			c.ID = fmt.Sprintf("call_%s_%d", j.ID, i)
		}
	}
	res := interactionResult{Output: &Content{Role: "model", Parts: reply.Parts}, Usage: reply.Usage, Steps: replySteps(reply)}
	res.Pending = reply.FunctionCalls()
	state := core.JobSucceeded
	if len(res.Pending) > 0 {
		state = core.JobRequiresAction
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return outcome{}, err
	}
	return outcome{state: state, result: raw}, nil
}

// interactionTurn builds the Turn of an interaction from its chain of
// predecessors (at most 64), oldest first. Tools, system instruction and
// generation config carry over from the nearest turn that set them.
func (s *Service) interactionTurn(ctx context.Context, j *core.Job) (*Turn, error) {
	chain := []*core.Job{j}
	for id := j.ParentID; id != "" && len(chain) < 64; {
		p, err := s.store.GetJob(ctx, j.ProjectID, id)
		if errors.Is(err, core.ErrNotFound) {
			return nil, core.Invalid("previous_interaction_id", "the previous interaction %s no longer exists", id)
		}
		if err != nil {
			return nil, err
		}
		chain = append(chain, p)
		id = p.ParentID
	}
	t := &Turn{Kind: core.JobInteraction, Model: j.Model}
	for i := len(chain) - 1; i >= 0; i-- {
		var req interactionJob
		if err := json.Unmarshal(chain[i].Request, &req); err != nil {
			return nil, err
		}
		t.Contents = append(t.Contents, req.Contents...)
		if req.Tools != nil {
			t.Tools = req.Tools
		}
		if req.System != "" {
			t.System = &Content{Parts: []Part{{Text: req.System}}}
		}
		if !req.Config.zero() {
			t.Config = req.Config
		}
		if i > 0 {
			var res interactionResult
			_ = json.Unmarshal(chain[i].Result, &res)
			if res.Output != nil {
				t.Contents = append(t.Contents, *res.Output)
			}
		}
	}
	return t, nil
}

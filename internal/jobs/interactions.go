package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// InteractionInput is a new interaction turn. Input, Tools and
// GenerationConfig are the request's raw JSON (the Interactions API's
// shapes, parsed here); Echo holds the request fields the resource echoes
// verbatim.
type InteractionInput struct {
	Model                 string
	Agent                 json.RawMessage
	Input                 json.RawMessage
	Background            bool
	WebhookConfig         *core.WebhookConfig
	PreviousInteractionID string
	SystemInstruction     json.RawMessage
	Tools                 json.RawMessage
	GenerationConfig      json.RawMessage
	Echo                  map[string]json.RawMessage
	// Base is the API base URL (with version) the interaction was created
	// through; interaction.completed points at it when its output is too
	// large to inline.
	Base string
}

// InteractionRequest is an interaction's stored request (core.Job.Request).
type InteractionRequest struct {
	// Echo holds the request fields the resource echoes verbatim.
	Echo map[string]json.RawMessage `json:"echo,omitempty"`
	// Input is the raw input, returned with include_input=true.
	Input json.RawMessage `json:"input,omitempty"`
	// Contents is this turn's input as Gemini contents.
	Contents   []executor.Content        `json:"contents"`
	Tools      []executor.FunctionDecl   `json:"tools,omitempty"`
	System     string                    `json:"system,omitempty"`
	Config     executor.GenerationConfig `json:"config"`
	Background bool                      `json:"background"`
	Base       string                    `json:"base,omitempty"`
	// Agent is the agent the turn runs, when it names one.
	Agent string `json:"agent,omitempty"`
	// Video, when set, makes the turn render a video (a Veo model, or a
	// request for video output).
	Video *videoRequest `json:"video,omitempty"`
}

// InteractionResult is an interaction's stored result (core.Job.Result).
type InteractionResult struct {
	Steps []map[string]any `json:"steps"`
	// Output is the model's turn as Gemini content (conversation history
	// for continuations).
	Output  *executor.Content        `json:"output,omitempty"`
	Usage   executor.Usage           `json:"usage"`
	Pending []*executor.FunctionCall `json:"pending,omitempty"` // calls awaiting results
	// AnsweredBy is the latest continuation that answered the pending
	// calls: the job's terminal event comes with it, so this turn can no
	// longer be cancelled.
	AnsweredBy string `json:"answered_by,omitempty"`
}

// CreateInteraction validates and creates an interaction turn of the
// project (the caller has checked that it names a model or an agent and
// has an input, and that only a background turn gives a webhook_config;
// a continuation without one keeps its predecessor's). A background turn
// is left pending for the runner; a foreground one runs in this call,
// holding the lease like a runner, and is returned settled.
func (s *Service) CreateInteraction(ctx context.Context, projectID string, in InteractionInput) (*core.Job, error) {
	if in.Model != "" {
		if err := core.ValidateModel("model", in.Model); err != nil {
			return nil, err
		}
	}
	parent, callNames, err := s.interactionParent(ctx, projectID, in.PreviousInteractionID)
	if err != nil {
		return nil, err
	}
	raw, err := interactionRequest(in, parent, callNames)
	if err != nil {
		return nil, err
	}
	j := s.newInteractionJob(projectID, in, parent, raw)
	answers := parent != nil && parent.State == core.JobRequiresAction
	if answers {
		// Recorded on the predecessor before the continuation exists, under
		// its row lock: a cancel racing this answer either ends the
		// predecessor first (and the answer is refused) or is refused.
		if err := s.markAnswered(ctx, parent, j.ID); err != nil {
			return nil, err
		}
	}
	if err := s.createJob(ctx, j); err != nil {
		if answers {
			s.unmarkAnswered(ctx, parent, j.ID)
		}
		return nil, err
	}
	if in.Background {
		s.notify()
		return j, nil
	}
	rctx, cancel := context.WithCancelCause(ctx)
	s.track(j.ID, cancel)
	s.execute(rctx, j)
	s.untrack(j.ID)
	cancel(nil)
	return s.store.GetJob(context.WithoutCancel(ctx), projectID, j.ID)
}

// interactionParent returns the settled interaction a continuation
// follows (nil without previous_interaction_id) and the names of its
// pending function calls by call id.
func (s *Service) interactionParent(ctx context.Context, projectID, previousID string) (*core.Job, map[string]string, error) {
	callNames := map[string]string{}
	if previousID == "" {
		return nil, callNames, nil
	}
	parent, err := s.store.GetJob(ctx, projectID, previousID)
	if err != nil || parent.Kind != core.JobInteraction {
		return nil, nil, core.Invalid("previous_interaction_id", "previous_interaction_id %q is not an interaction of this project", previousID)
	}
	if !parent.State.Settled() {
		return nil, nil, core.Errorf(core.ErrFailedPrecondition, "The previous interaction %s is still in progress.", parent.ID)
	}
	for _, c := range pendingCalls(parent) {
		callNames[c.ID] = c.Name
	}
	return parent, callNames, nil
}

// interactionRequest validates the turn's input, tools and settings into
// the job's request (an InteractionRequest, JSON).
func interactionRequest(in InteractionInput, parent *core.Job, callNames map[string]string) ([]byte, error) {
	contents, err := parseInteractionInput(in.Input, callNames)
	if err != nil {
		return nil, err
	}
	if err := checkFunctionResults(parent, contents); err != nil {
		return nil, err
	}
	req := InteractionRequest{Input: in.Input, Contents: contents, Background: in.Background, Echo: in.Echo, Base: in.Base}
	_ = json.Unmarshal(in.Agent, &req.Agent) // an agent's name; other shapes run as a model turn
	if req.Video, err = interactionVideo(in, contents); err != nil {
		return nil, err
	}
	if req.Tools, err = parseInteractionTools(in.Tools); err != nil {
		return nil, err
	}
	if len(in.SystemInstruction) > 0 {
		if json.Unmarshal(in.SystemInstruction, &req.System) != nil {
			return nil, core.Invalid("system_instruction", "system_instruction must be a string")
		}
	}
	if len(in.GenerationConfig) > 0 {
		if req.Config, err = parseGenerationConfig(in.GenerationConfig); err != nil {
			return nil, core.Invalid("generation_config", "generation_config must be a JSON object")
		}
	}
	return json.Marshal(req)
}

// newInteractionJob is the turn's job: pending for the runner in the
// background, else running under this process's lease.
func (s *Service) newInteractionJob(projectID string, in InteractionInput, parent *core.Job, raw []byte) *core.Job {
	now := s.cfg.Clock.Now()
	j := &core.Job{ID: core.NewSortableID(now), ProjectID: projectID, Kind: core.JobInteraction, State: core.JobPending,
		Model: in.Model, Request: raw, WebhookConfig: in.WebhookConfig, ParentID: in.PreviousInteractionID,
		CreateTime: now, UpdateTime: now}
	if parent != nil {
		// A continuation carries on its predecessor's job: its events are
		// numbered after the predecessor's and, unless it names its own
		// webhook_config, go where the predecessor's went (the receiver
		// of interaction.requires_action hears how the conversation ends).
		j.Sequence = parent.Sequence
		if j.WebhookConfig == nil {
			j.WebhookConfig = parent.WebhookConfig
		}
	}
	if !in.Background {
		// Foreground: run it in this call, holding the lease like a runner.
		j.State, j.LeaseOwner, j.LeaseExpire, j.Runs, j.StartTime = core.JobRunning, s.cfg.Owner, now.Add(s.cfg.LeaseTTL), 1, now
	}
	return j
}

// markAnswered records on an interaction waiting in requires_action that
// the continuation childID answers it; FAILED_PRECONDITION when it is no
// longer waiting (cancelled meanwhile).
func (s *Service) markAnswered(ctx context.Context, parent *core.Job, childID string) error {
	_, err := s.store.UpdateJob(ctx, parent.ProjectID, parent.ID, func(cur *core.Job) error {
		if cur.State != core.JobRequiresAction {
			return notAnswerable(cur)
		}
		return setAnsweredBy(cur, childID)
	})
	return err
}

// unmarkAnswered undoes markAnswered when the continuation could not be
// created (unless another continuation answered since).
func (s *Service) unmarkAnswered(ctx context.Context, parent *core.Job, childID string) {
	_, err := s.store.UpdateJob(context.WithoutCancel(ctx), parent.ProjectID, parent.ID, func(cur *core.Job) error {
		if answeredBy(cur) != childID {
			return errSettled
		}
		return setAnsweredBy(cur, "")
	})
	if err != nil && !errors.Is(err, errSettled) {
		s.log.Warn("job.unmark_answered_failed", slog.String("job", parent.ID), slog.String("error", err.Error()))
	}
}

// notAnswerable is the error of a function result sent for an interaction
// that no longer waits for it.
func notAnswerable(j *core.Job) error {
	if j.State == core.JobCancelled {
		return core.Errorf(core.ErrFailedPrecondition, "Interaction %s was cancelled; its function calls can no longer be answered.", j.ID)
	}
	return core.Errorf(core.ErrFailedPrecondition, "Interaction %s is %s; it waits for no function result.", j.ID, j.State.Public(j.Kind))
}

// answeredBy returns the continuation that answered an interaction in
// requires_action ("" when none did).
func answeredBy(j *core.Job) string {
	if j.Kind != core.JobInteraction || j.State != core.JobRequiresAction {
		return ""
	}
	var res struct {
		AnsweredBy string `json:"answered_by"`
	}
	_ = json.Unmarshal(j.Result, &res)
	return res.AnsweredBy
}

// setAnsweredBy sets answered_by in j's result, leaving its other members
// as they are.
func setAnsweredBy(j *core.Job, id string) error {
	m := map[string]json.RawMessage{}
	if len(j.Result) > 0 {
		if err := json.Unmarshal(j.Result, &m); err != nil {
			return err
		}
	}
	if id == "" {
		delete(m, "answered_by")
	} else {
		b, _ := json.Marshal(id)
		m["answered_by"] = b
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	j.Result = raw
	return nil
}

// pendingCalls returns the function calls an interaction waits on.
func pendingCalls(j *core.Job) []*executor.FunctionCall {
	if j == nil || j.State != core.JobRequiresAction {
		return nil
	}
	var res InteractionResult
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
// on function calls to answer each of them, and only them; a cancelled
// interaction's calls can no longer be answered (its job has ended, with
// interaction.cancelled).
func checkFunctionResults(parent *core.Job, contents []executor.Content) error {
	if parent != nil && parent.State == core.JobCancelled {
		for _, c := range contents {
			for _, p := range c.Parts {
				if p.FunctionResponse != nil {
					return notAnswerable(parent)
				}
			}
		}
	}
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
	var req InteractionRequest
	if err := json.Unmarshal(j.Request, &req); err != nil {
		return failure("INTERNAL", "the stored interaction request is unreadable"), nil
	}
	if req.Video != nil {
		return s.runInteractionVideo(ctx, j, &req)
	}
	turn, err := s.interactionTurn(ctx, j)
	if err != nil {
		if core.IsInvalid(err) {
			return failure("INVALID_ARGUMENT", err.Error()), nil
		}
		return outcome{}, err
	}
	var progress []map[string]any
	turn.Progress = func(note string) {
		progress = append(progress, map[string]any{"type": "thought", "summary": []any{map[string]any{"type": "text", "text": note}}})
		s.showSteps(ctx, j, progress)
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
	res := InteractionResult{Output: &executor.Content{Role: "model", Parts: reply.Parts}, Usage: reply.Usage,
		Steps: append(progress, replySteps(reply)...)}
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

// showSteps records the steps of a running turn, so that GET shows its
// progress. A turn this runner no longer holds is left alone; a failure
// only delays what GET shows.
func (s *Service) showSteps(ctx context.Context, j *core.Job, steps []map[string]any) {
	raw, err := json.Marshal(InteractionResult{Steps: steps})
	if err != nil {
		return
	}
	_, err = s.store.UpdateJob(context.WithoutCancel(ctx), j.ProjectID, j.ID, func(cur *core.Job) error {
		if cur.State != core.JobRunning || cur.LeaseOwner != s.cfg.Owner {
			return errLeaseLost
		}
		cur.Result, cur.UpdateTime = raw, s.cfg.Clock.Now()
		return nil
	})
	if err != nil && !errors.Is(err, errLeaseLost) {
		s.log.Warn("job.progress_failed", slog.String("job", j.ID), slog.String("error", err.Error()))
	}
}

// interactionTurn builds the Turn of an interaction from its chain of
// predecessors (at most 64), oldest first. Tools, system instruction and
// generation config carry over from the nearest turn that set them.
func (s *Service) interactionTurn(ctx context.Context, j *core.Job) (*executor.Turn, error) {
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
	t := &executor.Turn{Kind: core.JobInteraction, Model: j.Model}
	var cur InteractionRequest
	_ = json.Unmarshal(j.Request, &cur)
	t.Agent = cur.Agent
	for i := len(chain) - 1; i >= 0; i-- {
		var req InteractionRequest
		if err := json.Unmarshal(chain[i].Request, &req); err != nil {
			return nil, err
		}
		t.Contents = append(t.Contents, req.Contents...)
		if req.Tools != nil {
			t.Tools = req.Tools
		}
		if req.System != "" {
			t.System = &executor.Content{Parts: []executor.Part{{Text: req.System}}}
		}
		if !req.Config.IsZero() {
			t.Config = req.Config
		}
		if i > 0 {
			var res InteractionResult
			_ = json.Unmarshal(chain[i].Result, &res)
			if res.Output != nil {
				t.Contents = append(t.Contents, *res.Output)
			}
		}
	}
	return t, nil
}

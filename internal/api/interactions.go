package api

import (
	"encoding/json"
	"net/http"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
)

// The Interactions API (docs/contract.md §11): POST /{v}/interactions runs a turn
// (in the request, or in the background with background: true); a
// continuation names its predecessor in previous_interaction_id.

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

func (s *server) createInteraction(r *http.Request, key core.APIKey) (any, error) {
	var body interactionBody
	if err := DecodeJSON(r, &body); err != nil {
		return nil, err
	}
	agent, err := interactionAgent(body.Agent, body.Model)
	if err != nil {
		return nil, err
	}
	if agent == "" {
		body.Agent = nil // null: no agent
	}
	switch {
	case body.Model == "" && agent == "":
		return nil, core.Invalid("model", "model (or agent) is required")
	case body.Stream:
		return nil, core.Invalid("stream", "stream: true is not supported; use background: true and poll, or a webhook_config")
	case body.WebhookConfig != nil && !body.Background:
		return nil, core.Invalid("webhook_config", "webhook_config requires background: true")
	case len(body.Input) == 0:
		return nil, core.Invalid("input", "input is required")
	}
	in := jobs.InteractionInput{Model: body.Model, Agent: body.Agent, Input: body.Input, Background: body.Background,
		PreviousInteractionID: body.PreviousInteractionID, SystemInstruction: body.SystemInstruction,
		Tools: body.Tools, GenerationConfig: body.GenerationConfig, Echo: map[string]json.RawMessage{}, Base: s.apiBase(r)}
	for name, v := range map[string]json.RawMessage{"agent": body.Agent, "agent_config": body.AgentConfig,
		"system_instruction": body.SystemInstruction, "tools": body.Tools, "generation_config": body.GenerationConfig,
		"response_format": body.ResponseFormat, "response_mime_type": body.ResponseMimeType,
		"response_modalities": body.ResponseModalities, "safety_settings": body.SafetySettings,
		"service_tier": body.ServiceTier, "labels": body.Labels, "cached_content": body.CachedContent,
		"environment": body.Environment} {
		if len(v) > 0 && string(v) != "null" {
			in.Echo[name] = v
		}
	}
	if in.WebhookConfig, err = s.webhookConfig("webhook_config", body.WebhookConfig); err != nil {
		return nil, err
	}
	j, err := s.d.Jobs.CreateInteraction(r.Context(), key.ProjectID, in)
	if err != nil {
		return nil, err
	}
	return renderInteraction(j, false), nil
}

// interactionAgent reads the agent an interaction names (raw, as sent;
// "" when absent or null). An interaction is a model's turn or an agent's
// (the SDKs' CreateModelInteraction and CreateAgentInteraction), so naming
// both is refused rather than one silently preferred; the agent is a name,
// checked like a model's because it is stored and echoed the same way.
func interactionAgent(raw json.RawMessage, model string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var agent string
	if json.Unmarshal(raw, &agent) != nil {
		return "", core.Invalid("agent", "agent must be a string, the agent's name (e.g. \"deep-research-pro-preview-12-2025\")")
	}
	if model != "" {
		return "", core.Invalid("agent", "set model or agent, not both: an interaction is a model's turn or an agent's")
	}
	if err := core.ValidateModel("agent", agent); err != nil {
		return "", err
	}
	return agent, nil
}

// interactionOf loads an interaction of the project.
func (s *server) interactionOf(r *http.Request, key core.APIKey) (*core.Job, error) {
	id := r.PathValue("id")
	j, err := s.d.Jobs.Job(r.Context(), key.ProjectID, id, core.JobInteraction)
	if err != nil {
		return nil, core.OrNotFound(err, "Interaction "+id)
	}
	return j, nil
}

func (s *server) getInteraction(r *http.Request, key core.APIKey) (any, error) {
	if r.URL.Query().Get("stream") == "true" {
		return nil, core.Invalid("stream", "stream=true is not supported; poll without it")
	}
	j, err := s.interactionOf(r, key)
	if err != nil {
		return nil, err
	}
	return renderInteraction(j, r.URL.Query().Get("include_input") == "true"), nil
}

func (s *server) cancelInteraction(r *http.Request, key core.APIKey) (any, error) {
	id := r.PathValue("id")
	j, err := s.d.Jobs.Cancel(r.Context(), key.ProjectID, id, core.JobInteraction)
	if err != nil {
		return nil, core.OrNotFound(err, "Interaction "+id) // the 404 of get
	}
	return renderInteraction(j, false), nil
}

func (s *server) deleteInteraction(r *http.Request, key core.APIKey) (any, error) {
	j, err := s.interactionOf(r, key)
	if err != nil {
		return nil, err
	}
	return nil, s.d.Jobs.DeleteJob(r.Context(), j)
}

// renderInteraction is the Interaction resource.
func renderInteraction(j *core.Job, includeInput bool) map[string]any {
	var req jobs.InteractionRequest
	_ = json.Unmarshal(j.Request, &req)
	var res jobs.InteractionResult
	_ = json.Unmarshal(j.Result, &res)
	steps := res.Steps
	if steps == nil {
		steps = []map[string]any{}
	}
	m := map[string]any{
		"id":      j.ID,
		"status":  j.State.InteractionStatus(),
		"created": resourceTime(j.CreateTime), // "ISO 8601 format (YYYY-MM-DDThh:mm:ssZ)" (@google/genai 3.1.0 Interaction)
		"updated": resourceTime(j.UpdateTime),
		"steps":   steps,
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
		m["errors"] = []any{jobs.ErrorObject(j)}
	}
	return m
}

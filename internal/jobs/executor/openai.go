package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// OpenAIConfig configures the OpenAI executor.
type OpenAIConfig struct {
	// URL is the server: a base ("http://localhost:11434",
	// "https://api.openai.com/v1") or the full .../chat/completions URL.
	URL string
	// APIKey is sent as a bearer token when set.
	APIKey string
	// Model, when set, replaces the model of every request.
	Model string
	// Concurrency caps requests in flight (default 4).
	Concurrency int
	// MaxRetries is how often a 408/429/5xx or connection failure is
	// retried (default 5).
	MaxRetries int
	// Backoff is the first retry delay, doubled per retry up to 30 s
	// (default 500 ms). A Retry-After header (seconds) is honoured up to
	// 60 s.
	Backoff time.Duration
	// Timeout bounds one attempt (default 2 min).
	Timeout time.Duration
	// Client makes the requests (default: a client with no overall timeout).
	Client *http.Client
	// Clock times the backoff (default core.SystemClock).
	Clock core.Clock
}

// OpenAI forwards each turn to an OpenAI-compatible /v1/chat/completions
// server, mapping Gemini contents, function declarations, function calls
// and function results both ways. It does not render videos (see Combine).
type OpenAI struct {
	cfg OpenAIConfig
	url string
	sem chan struct{}
}

// NewOpenAI returns an OpenAI executor.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if cfg.URL == "" {
		return nil, errors.New("executor: openai: URL is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	} else if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Clock == nil {
		cfg.Clock = core.SystemClock{}
	}
	u := strings.TrimSuffix(cfg.URL, "/")
	switch {
	case strings.HasSuffix(u, "/chat/completions"):
	case strings.HasSuffix(u, "/v1"):
		u += "/chat/completions"
	default:
		u += "/v1/chat/completions"
	}
	return &OpenAI{cfg: cfg, url: u, sem: make(chan struct{}, cfg.Concurrency)}, nil
}

type oaMessage struct {
	Role       string       `json:"role"`
	Content    *string      `json:"content"`
	ToolCalls  []oaToolCall `json:"tool_calls,omitempty"`
	ToolCallID string       `json:"tool_call_id,omitempty"`
}

type oaToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type oaResponse struct {
	Choices []struct {
		Message struct {
			Content   *string      `json:"content"`
			ToolCalls []oaToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// Generate implements Executor.
func (o *OpenAI) Generate(ctx context.Context, t *Turn) (*Reply, error) {
	body, err := json.Marshal(o.request(t))
	if err != nil {
		return nil, err
	}
	var lastErr *Error
	for attempt := 0; ; attempt++ {
		resp, retryAfter, err := o.attempt(ctx, body)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *Error
		if !errors.As(err, &ee) {
			return nil, err
		}
		lastErr = ee
		if retryAfter < 0 || attempt >= o.cfg.MaxRetries {
			return nil, lastErr
		}
		delay := min(o.cfg.Backoff<<attempt, 30*time.Second)
		if retryAfter > 0 {
			delay = min(retryAfter, time.Minute)
		}
		timer := o.cfg.Clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C():
		}
	}
}

// attempt makes one request. retryAfter is -1 for errors not worth
// retrying, 0 for retryable ones without a Retry-After, else the delay the
// server asked for.
func (o *OpenAI) attempt(ctx context.Context, body []byte) (*Reply, time.Duration, error) {
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, -1, ctx.Err()
	}
	defer func() { <-o.sem }()
	actx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return nil, -1, &Error{Code: "INTERNAL", Message: err.Error(), Fatal: true}
	}
	req.Header.Set("Content-Type", "application/json")
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	res, err := o.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, &Error{Code: "UNAVAILABLE", Message: "the model server is unreachable: " + err.Error()}
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return nil, 0, &Error{Code: "UNAVAILABLE", Message: "reading the model server's answer: " + err.Error()}
	}
	if res.StatusCode/100 != 2 {
		e := &Error{Code: httpStatusName(res.StatusCode), Message: fmt.Sprintf("the model server answered %d: %s", res.StatusCode, truncate(strings.TrimSpace(string(raw)), 300))}
		if res.StatusCode == 408 || res.StatusCode == 429 || res.StatusCode >= 500 {
			secs, _ := strconv.Atoi(res.Header.Get("Retry-After"))
			return nil, time.Duration(max(secs, 0)) * time.Second, e
		}
		return nil, -1, e
	}
	var out oaResponse
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Choices) == 0 {
		return nil, -1, &Error{Code: "INTERNAL", Message: "the model server's answer has no choices"}
	}
	return replyFromOpenAI(&out), -1, nil
}

// request maps a Turn to a chat completions request.
func (o *OpenAI) request(t *Turn) map[string]any {
	model := strings.TrimPrefix(t.Model, "models/")
	if o.cfg.Model != "" {
		model = o.cfg.Model
	}
	var msgs []oaMessage
	text := func(s string) *string { return &s }
	if t.System != nil {
		msgs = append(msgs, oaMessage{Role: "system", Content: text(t.System.Text())})
	}
	callIDs := map[string]string{} // function name → id of its latest call
	for _, c := range t.Contents {
		if c.Role == "model" {
			m := oaMessage{Role: "assistant"}
			if s := c.Text(); s != "" {
				m.Content = text(s)
			}
			for i, p := range c.Parts {
				if fc := p.FunctionCall; fc != nil {
					tc := oaToolCall{ID: fc.ID, Type: "function"}
					if tc.ID == "" {
						tc.ID = "call_" + strconv.Itoa(len(msgs)) + "_" + strconv.Itoa(i)
					}
					tc.Function.Name, tc.Function.Arguments = fc.Name, compactJSONObject(fc.Args)
					callIDs[fc.Name] = tc.ID
					m.ToolCalls = append(m.ToolCalls, tc)
				}
			}
			msgs = append(msgs, m)
			continue
		}
		for _, p := range c.Parts {
			if fr := p.FunctionResponse; fr != nil {
				id := fr.ID
				if id == "" {
					id = callIDs[fr.Name]
				}
				msgs = append(msgs, oaMessage{Role: "tool", ToolCallID: id, Content: text(compactJSON(fr.Response))})
			}
		}
		if s := c.Text(); s != "" {
			msgs = append(msgs, oaMessage{Role: "user", Content: text(s)})
		}
	}
	req := map[string]any{"model": model, "messages": msgs}
	if len(t.Tools) > 0 {
		var tools []any
		for _, fd := range t.Tools {
			params := json.RawMessage(`{"type":"object","properties":{}}`)
			if len(fd.Parameters) > 0 {
				params = lowerSchemaTypes(fd.Parameters)
			}
			fn := map[string]any{"name": fd.Name, "parameters": params}
			if fd.Description != "" {
				fn["description"] = fd.Description
			}
			tools = append(tools, map[string]any{"type": "function", "function": fn})
		}
		req["tools"] = tools
	}
	if c := t.Config; c.Temperature != nil {
		req["temperature"] = *c.Temperature
	}
	if c := t.Config; c.TopP != nil {
		req["top_p"] = *c.TopP
	}
	if t.Config.MaxOutputTokens > 0 {
		req["max_tokens"] = t.Config.MaxOutputTokens
	}
	if len(t.Config.StopSequences) > 0 {
		req["stop"] = t.Config.StopSequences
	}
	return req
}

// replyFromOpenAI maps the first choice back to Gemini parts.
func replyFromOpenAI(r *oaResponse) *Reply {
	ch := r.Choices[0]
	out := &Reply{Usage: Usage{PromptTokens: r.Usage.PromptTokens, OutputTokens: r.Usage.CompletionTokens}}
	if ch.Message.Content != nil && *ch.Message.Content != "" {
		out.Parts = append(out.Parts, Part{Text: *ch.Message.Content})
	}
	for _, tc := range ch.Message.ToolCalls {
		args := json.RawMessage(tc.Function.Arguments)
		if !json.Valid(args) {
			args, _ = json.Marshal(map[string]string{"_raw": tc.Function.Arguments})
		}
		out.Parts = append(out.Parts, Part{FunctionCall: &FunctionCall{ID: tc.ID, Name: tc.Function.Name, Args: args}})
	}
	switch ch.FinishReason {
	case "length":
		out.FinishReason = "MAX_TOKENS"
	case "content_filter":
		out.FinishReason = "SAFETY"
	default:
		out.FinishReason = "STOP"
	}
	return out
}

// RenderVideo implements Executor: not supported.
func (o *OpenAI) RenderVideo(context.Context, *VideoSpec, string) (string, error) {
	return "", &Error{Code: "UNIMPLEMENTED", Message: "the openai executor does not render videos", Fatal: true}
}

// httpStatusName maps an HTTP status of the model server to a Google
// status name.
func httpStatusName(code int) string {
	switch {
	case code == 400:
		return "INVALID_ARGUMENT"
	case code == 401:
		return "UNAUTHENTICATED"
	case code == 403:
		return "PERMISSION_DENIED"
	case code == 404:
		return "NOT_FOUND"
	case code == 408:
		return "DEADLINE_EXCEEDED"
	case code == 429:
		return "RESOURCE_EXHAUSTED"
	case code >= 500:
		return "UNAVAILABLE"
	}
	return "UNKNOWN"
}

// compactJSONObject renders function arguments as the JSON string OpenAI
// expects ("{}" when empty).
func compactJSONObject(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "{}"
	}
	return compactJSON(raw)
}

// lowerSchemaTypes lowercases the "type" values of a Gemini schema
// ("OBJECT" → "object"), which JSON Schema requires.
func lowerSchemaTypes(raw json.RawMessage) json.RawMessage {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return raw
	}
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if s, ok := e.(string); ok && k == "type" {
					x[k] = strings.ToLower(s)
				} else {
					walk(e)
				}
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	b, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return b
}

package executor

import (
	"encoding/json"
	"strings"

	"github.com/longhook/longhook/internal/core"
)

// Turn is one model call in Gemini's shape: what a batch request or an
// interaction turn asks of an Executor.
type Turn struct {
	// Kind is the kind of job the turn belongs to.
	Kind  core.JobKind
	Model string
	// System is the system instruction (nil when none).
	System *Content
	// Contents is the conversation, oldest first; the last entry is the
	// user's (text or function results).
	Contents []Content
	// Tools are the functions the model may call.
	Tools  []FunctionDecl
	Config GenerationConfig
	// Agent names the agent an interaction runs (e.g. a deep-research
	// agent) instead of a model; empty for model turns.
	Agent string
	// Progress, when set, receives a short note of each intermediate
	// step of a long turn (an agent's), which the interaction shows as a
	// thought step while it runs.
	Progress func(note string)
}

// Content is one message: role "user" or "model" and its parts.
type Content struct {
	Role  string `json:"role,omitempty"`
	Parts []Part `json:"parts"`
}

// Part is one piece of a message. Exactly one field is set; Other keeps
// parts this package does not interpret (inline data, file data...).
type Part struct {
	Text             string            `json:"text,omitempty"`
	FunctionCall     *FunctionCall     `json:"functionCall,omitempty"`
	FunctionResponse *FunctionResponse `json:"functionResponse,omitempty"`
	Other            json.RawMessage   `json:"-"`
}

// MarshalJSON renders Other parts verbatim.
func (p Part) MarshalJSON() ([]byte, error) {
	if len(p.Other) > 0 {
		return p.Other, nil
	}
	type plain Part
	return json.Marshal(plain(p))
}

// UnmarshalJSON reads a part; one that is neither text nor a function call
// or response is kept verbatim in Other, so media parts survive storage.
func (p *Part) UnmarshalJSON(b []byte) error {
	type plain Part
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Part(v)
	if p.Text == "" && p.FunctionCall == nil && p.FunctionResponse == nil {
		p.Other = append(json.RawMessage(nil), b...)
	}
	return nil
}

// FunctionCall is a call the model asks the client to make.
type FunctionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// FunctionResponse is the client's answer to a FunctionCall.
type FunctionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response,omitempty"`
}

// FunctionDecl declares a function the model may call. Parameters is a
// JSON schema (OpenAPI or JSON Schema flavour, as the client sent it).
type FunctionDecl struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// GenerationConfig holds the sampling settings executors understand.
type GenerationConfig struct {
	Temperature     *float64 `json:"temperature,omitempty"`
	TopP            *float64 `json:"topP,omitempty"`
	MaxOutputTokens int      `json:"maxOutputTokens,omitempty"`
	StopSequences   []string `json:"stopSequences,omitempty"`
}

// IsZero reports whether no setting is set.
func (g GenerationConfig) IsZero() bool {
	return g.Temperature == nil && g.TopP == nil && g.MaxOutputTokens == 0 && len(g.StopSequences) == 0
}

// Reply is an Executor's answer to a Turn.
type Reply struct {
	Parts []Part
	// FinishReason is Gemini's: STOP, MAX_TOKENS, SAFETY, OTHER.
	FinishReason string
	Usage        Usage
}

// Usage counts tokens.
type Usage struct {
	PromptTokens int
	OutputTokens int
}

// FunctionCalls returns the reply's function calls.
func (r *Reply) FunctionCalls() []*FunctionCall {
	var out []*FunctionCall
	for _, p := range r.Parts {
		if p.FunctionCall != nil {
			out = append(out, p.FunctionCall)
		}
	}
	return out
}

// Text concatenates the text parts of c.
func (c *Content) Text() string {
	var b strings.Builder
	for _, p := range c.Parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// This file converts between the Interactions API's shapes (input content
// blocks and steps) and the Gemini contents executors work on.

// parseInteractionInput reads an interaction's input — a string, a content
// block, or an array of content blocks and steps (user_input,
// model_output, function_call, function_result) — into Gemini contents.
// callNames maps the call ids of the predecessor's pending function calls
// to their function names, for function results that omit the name.
func parseInteractionInput(raw json.RawMessage, callNames map[string]string) ([]executor.Content, error) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if text == "" {
			return nil, core.Invalid("input", "input must not be empty")
		}
		return []executor.Content{{Role: "user", Parts: []executor.Part{{Text: text}}}}, nil
	}
	items, err := inputItems(raw)
	if err != nil {
		return nil, err
	}
	var out contents
	for i, it := range items {
		if err := out.addItem(it, fmt.Sprintf("input[%d]", i), callNames); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, core.Invalid("input", "input holds no content")
	}
	return out, nil
}

// inputItems returns the content blocks and steps of an input that is not
// a string: one object, or an array of them.
func inputItems(raw json.RawMessage) ([]json.RawMessage, error) {
	var items []json.RawMessage
	switch t := bytes.TrimSpace(raw); {
	case len(t) > 0 && t[0] == '{':
		items = []json.RawMessage{t}
	case json.Unmarshal(t, &items) != nil:
		return nil, core.Invalid("input", "input must be a string, a content object, or an array of contents and steps")
	}
	return items, nil
}

// contents are Gemini contents being read from an input: consecutive
// parts of one role join one content.
type contents []executor.Content

func (out *contents) add(role string, p executor.Part) {
	if n := len(*out); n > 0 && (*out)[n-1].Role == role {
		(*out)[n-1].Parts = append((*out)[n-1].Parts, p)
		return
	}
	*out = append(*out, executor.Content{Role: role, Parts: []executor.Part{p}})
}

// addItem adds one content block or step of the input (what names it in
// errors); thoughts add nothing.
func (out *contents) addItem(it json.RawMessage, what string, callNames map[string]string) error {
	f, err := decodeFields(it, what)
	if err != nil {
		return err
	}
	var typ string
	_ = json.Unmarshal(f.get("type"), &typ)
	switch typ {
	case "text", "image", "audio", "video", "document":
		p, err := contentBlock(f, it, what)
		if err != nil {
			return err
		}
		out.add("user", p)
	case "user_input", "model_output":
		role := "user"
		if typ == "model_output" {
			role = "model"
		}
		return out.addTurn(role, f, what)
	case "function_call":
		p, err := functionCallPart(it, what)
		if err != nil {
			return err
		}
		out.add("model", p)
	case "function_result":
		p, err := functionResultPart(it, what, callNames)
		if err != nil {
			return err
		}
		out.add("user", p)
	case "thought":
	default:
		return core.Invalid(what+".type", "%s.type %q is not supported; use text, user_input, model_output, function_call or function_result", what, typ)
	}
	return nil
}

// addTurn adds the content blocks of a user_input or model_output step
// as role's parts.
func (out *contents) addTurn(role string, f fields, what string) error {
	var blocks []json.RawMessage
	_ = json.Unmarshal(f.get("content"), &blocks)
	for k, b := range blocks {
		bf, err := decodeFields(b, fmt.Sprintf("%s.content[%d]", what, k))
		if err != nil {
			return err
		}
		p, err := contentBlock(bf, b, what)
		if err != nil {
			return err
		}
		out.add(role, p)
	}
	return nil
}

// functionCallPart reads a function_call step.
func functionCallPart(it json.RawMessage, what string) (executor.Part, error) {
	var c struct {
		ID        string          `json:"id"`
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if json.Unmarshal(it, &c) != nil || c.Name == "" {
		return executor.Part{}, core.Invalid(what, "%s: a function_call step needs a name", what)
	}
	return executor.Part{FunctionCall: &executor.FunctionCall{ID: c.ID, Name: c.Name, Args: c.Arguments}}, nil
}

// functionResultPart reads a function_result step; without a name it is
// the one of the call it answers (callNames).
func functionResultPart(it json.RawMessage, what string, callNames map[string]string) (executor.Part, error) {
	var r struct {
		CallID  string          `json:"call_id"`
		Name    string          `json:"name"`
		Result  json.RawMessage `json:"result"`
		IsError bool            `json:"is_error"`
	}
	if json.Unmarshal(it, &r) != nil || r.CallID == "" {
		return executor.Part{}, core.Invalid(what, "%s: a function_result step needs a call_id", what)
	}
	if r.Name == "" {
		r.Name = callNames[r.CallID]
	}
	return executor.Part{FunctionResponse: &executor.FunctionResponse{ID: r.CallID, Name: r.Name, Response: resultObject(r.Result, r.IsError)}}, nil
}

// contentBlock converts an interactions content block: text becomes a
// text part, other media are kept verbatim (executors skip them).
func contentBlock(f fields, raw json.RawMessage, what string) (executor.Part, error) {
	var typ string
	_ = json.Unmarshal(f.get("type"), &typ)
	if typ != "text" {
		return executor.Part{Other: bytes.Clone(raw)}, nil
	}
	var p executor.Part
	if err := json.Unmarshal(f.get("text"), &p.Text); err != nil {
		return executor.Part{}, core.Invalid(what, "%s: a text block needs a string text", what)
	}
	return p, nil
}

// resultObject makes a function result a JSON object, as Gemini's
// FunctionResponse.response must be: objects pass through, anything else
// is wrapped as {"result": ...} (or {"error": ...}).
func resultObject(result json.RawMessage, isError bool) json.RawMessage {
	t := bytes.TrimSpace(result)
	if !isError && len(t) > 0 && t[0] == '{' {
		return t
	}
	if len(t) == 0 {
		t = []byte("null")
	}
	key := "result"
	if isError {
		key = "error"
	}
	b, _ := json.Marshal(map[string]json.RawMessage{key: t})
	return b
}

// parseInteractionTools reads tools[] of type "function" (other tool types
// are accepted and ignored).
func parseInteractionTools(raw json.RawMessage) ([]executor.FunctionDecl, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var tools []fields
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, core.Invalid("tools", "tools must be an array of tool objects")
	}
	out := []executor.FunctionDecl{}
	for i, t := range tools {
		var typ string
		_ = json.Unmarshal(t.get("type"), &typ)
		if typ != "function" {
			continue
		}
		var fd executor.FunctionDecl
		_ = json.Unmarshal(t.get("name"), &fd.Name)
		_ = json.Unmarshal(t.get("description"), &fd.Description)
		fd.Parameters = t.get("parameters")
		if fd.Name == "" {
			return nil, core.Invalid(fmt.Sprintf("tools[%d].name", i), "tools[%d]: a function tool needs a name", i)
		}
		out = append(out, fd)
	}
	return out, nil
}

// replySteps renders a reply as interaction steps: a model_output step for
// the text, then one function_call step per call.
func replySteps(r *executor.Reply) []map[string]any {
	var steps []map[string]any
	if content := contentBlocks(r.Parts); len(content) > 0 {
		steps = append(steps, map[string]any{"type": "model_output", "content": content})
	}
	for _, c := range r.FunctionCalls() {
		steps = append(steps, map[string]any{"type": "function_call", "id": c.ID, "name": c.Name, "arguments": argsOrEmpty(c.Args)})
	}
	return steps
}

// contentBlocks renders the text parts of a model turn as interaction
// content blocks ({"type": "text", "text"}); other parts (media the
// executor produced) are kept as they are.
func contentBlocks(parts []executor.Part) []any {
	var out []any
	for _, p := range parts {
		switch {
		case p.Text != "":
			out = append(out, map[string]any{"type": "text", "text": p.Text})
		case len(p.Other) > 0:
			out = append(out, p.Other)
		}
	}
	return out
}

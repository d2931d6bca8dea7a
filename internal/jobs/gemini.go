package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// fields is a JSON object whose keys may come in lowerCamel or snake_case.
type fields map[string]json.RawMessage

// get returns the first present key among names.
func (f fields) get(names ...string) json.RawMessage {
	for _, n := range names {
		if v, ok := f[n]; ok && string(v) != "null" {
			return v
		}
	}
	return nil
}

func decodeFields(raw json.RawMessage, what string) (fields, error) {
	var f fields
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return nil, core.Invalid(what, "%s must be a JSON object", what)
	}
	return f, nil
}

// parseGenerateRequest reads a GenerateContentRequest (the "request" of a
// batch entry) in lowerCamel or snake_case into a Turn.
func parseGenerateRequest(raw json.RawMessage, model string) (*executor.Turn, error) {
	f, err := decodeFields(raw, "request")
	if err != nil {
		return nil, err
	}
	t := &executor.Turn{Kind: core.JobBatch, Model: model}
	if m := f.get("model"); m != nil {
		_ = json.Unmarshal(m, &t.Model)
	}
	var contents []json.RawMessage
	if c := f.get("contents"); c != nil {
		if err := json.Unmarshal(c, &contents); err != nil {
			return nil, core.Invalid("request.contents", "request.contents must be an array of Content objects ({\"role\", \"parts\": [...]})")
		}
	}
	for i, c := range contents {
		content, err := parseContent(c, fmt.Sprintf("request.contents[%d]", i))
		if err != nil {
			return nil, err
		}
		t.Contents = append(t.Contents, *content)
	}
	if len(t.Contents) == 0 {
		return nil, core.Invalid("request.contents", "request.contents must hold at least one Content")
	}
	if si := f.get("systemInstruction", "system_instruction"); si != nil {
		if t.System, err = parseContent(si, "request.systemInstruction"); err != nil {
			return nil, err
		}
	}
	if tools := f.get("tools"); tools != nil {
		if t.Tools, err = parseGeminiTools(tools); err != nil {
			return nil, err
		}
	}
	if gc := f.get("generationConfig", "generation_config"); gc != nil {
		if t.Config, err = parseGenerationConfig(gc); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// parseContent reads a Content: {"role", "parts":[...]}, or a bare string.
func parseContent(raw json.RawMessage, what string) (*executor.Content, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &executor.Content{Role: "user", Parts: []executor.Part{{Text: s}}}, nil
	}
	f, err := decodeFields(raw, what)
	if err != nil {
		return nil, err
	}
	c := &executor.Content{Role: "user"}
	if r := f.get("role"); r != nil {
		_ = json.Unmarshal(r, &c.Role)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(f.get("parts"), &parts); err != nil {
		return nil, core.Invalid(what+".parts", "%s.parts must be an array of Part objects ({\"text\": ...}, ...)", what)
	}
	for i, p := range parts {
		part, err := parsePart(p, fmt.Sprintf("%s.parts[%d]", what, i))
		if err != nil {
			return nil, err
		}
		c.Parts = append(c.Parts, part)
	}
	return c, nil
}

func parsePart(raw json.RawMessage, what string) (executor.Part, error) {
	f, err := decodeFields(raw, what)
	if err != nil {
		return executor.Part{}, err
	}
	if t := f.get("text"); t != nil {
		var p executor.Part
		if err := json.Unmarshal(t, &p.Text); err != nil {
			return executor.Part{}, core.Invalid(what+".text", "%s.text must be a string", what)
		}
		return p, nil
	}
	if fc := f.get("functionCall", "function_call"); fc != nil {
		var c executor.FunctionCall
		if err := json.Unmarshal(fc, &c); err != nil || c.Name == "" {
			return executor.Part{}, core.Invalid(what+".functionCall", "%s.functionCall needs a name", what)
		}
		return executor.Part{FunctionCall: &c}, nil
	}
	if fr := f.get("functionResponse", "function_response"); fr != nil {
		var r executor.FunctionResponse
		if err := json.Unmarshal(fr, &r); err != nil || r.Name == "" {
			return executor.Part{}, core.Invalid(what+".functionResponse", "%s.functionResponse needs a name", what)
		}
		return executor.Part{FunctionResponse: &r}, nil
	}
	return executor.Part{Other: bytes.Clone(raw)}, nil
}

// parseGeminiTools reads tools[].functionDeclarations[] (other tools are
// ignored).
func parseGeminiTools(raw json.RawMessage) ([]executor.FunctionDecl, error) {
	var tools []fields
	if err := json.Unmarshal(raw, &tools); err != nil {
		return nil, core.Invalid("request.tools", "request.tools must be an array of Tool objects")
	}
	var out []executor.FunctionDecl
	for i, t := range tools {
		var decls []fields
		if fd := t.get("functionDeclarations", "function_declarations"); fd != nil {
			if err := json.Unmarshal(fd, &decls); err != nil {
				return nil, core.Invalid("request.tools", "request.tools[%d].functionDeclarations must be an array", i)
			}
		}
		for _, d := range decls {
			var fd executor.FunctionDecl
			_ = json.Unmarshal(d.get("name"), &fd.Name)
			_ = json.Unmarshal(d.get("description"), &fd.Description)
			fd.Parameters = d.get("parametersJsonSchema", "parameters_json_schema", "parameters")
			if fd.Name == "" {
				return nil, core.Invalid("request.tools", "request.tools[%d]: every function declaration needs a name", i)
			}
			out = append(out, fd)
		}
	}
	return out, nil
}

func parseGenerationConfig(raw json.RawMessage) (executor.GenerationConfig, error) {
	f, err := decodeFields(raw, "generationConfig")
	if err != nil {
		return executor.GenerationConfig{}, err
	}
	var gc executor.GenerationConfig
	num := func(dst **float64, names ...string) {
		if v := f.get(names...); v != nil {
			var x float64
			if json.Unmarshal(v, &x) == nil {
				*dst = &x
			}
		}
	}
	num(&gc.Temperature, "temperature")
	num(&gc.TopP, "topP", "top_p")
	if v := f.get("maxOutputTokens", "max_output_tokens"); v != nil {
		_ = json.Unmarshal(v, &gc.MaxOutputTokens)
	}
	if v := f.get("stopSequences", "stop_sequences"); v != nil {
		_ = json.Unmarshal(v, &gc.StopSequences)
	}
	return gc, nil
}

// generateContentResponse renders a Reply as Gemini's
// GenerateContentResponse.
func generateContentResponse(r *executor.Reply, model string) map[string]any {
	parts := r.Parts
	if parts == nil {
		parts = []executor.Part{}
	}
	finish := r.FinishReason
	if finish == "" {
		finish = "STOP"
	}
	return map[string]any{
		"candidates": []any{map[string]any{
			"content":      executor.Content{Role: "model", Parts: parts},
			"finishReason": finish,
			"index":        0,
		}},
		"usageMetadata": map[string]any{
			"promptTokenCount":     r.Usage.PromptTokens,
			"candidatesTokenCount": r.Usage.OutputTokens,
			"totalTokenCount":      r.Usage.PromptTokens + r.Usage.OutputTokens,
		},
		"modelVersion": strings.TrimPrefix(model, "models/"),
	}
}

package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/jobs"
	"github.com/longhook/longhook/internal/jobs/executor"
)

// chatRequest is what the fake OpenAI server decodes.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role      string  `json:"role"`
		Content   *string `json:"content"`
		ToolCalls []struct {
			ID       string `json:"id"`
			Function struct {
				Arguments string `json:"arguments"`
			} `json:"function"`
		} `json:"tool_calls"`
		ToolCallID string `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string         `json:"name"`
			Parameters map[string]any `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
	MaxTokens int `json:"max_tokens"`
}

// fakeOpenAI answers chat completions with answer, after the canned
// failure statuses in fail (one per call).
func fakeOpenAI(t *testing.T, fail []int, answer func(*chatRequest) string) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		if r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer sk-test" {
			t.Errorf("request %s with %q", r.URL.Path, r.Header.Get("Authorization"))
		}
		if n <= len(fail) {
			if fail[n-1] == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
			}
			http.Error(w, `{"error":{"message":"try later"}}`, fail[n-1])
			return
		}
		var req chatRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("body: %v: %s", err, body)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answer(&req))
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// A batch runs against an OpenAI-compatible server that first answers 429
// and 500: the executor retries, and every request gets its answer.
func TestOpenAIExecutorBatch(t *testing.T) {
	t.Parallel()
	srv, calls := fakeOpenAI(t, []int{429, 500}, func(r *chatRequest) string {
		last := r.Messages[len(r.Messages)-1]
		out, _ := json.Marshal(map[string]any{
			"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": "echo: " + *last.Content}, "finish_reason": "stop"}},
			"usage":   map[string]int{"prompt_tokens": 3, "completion_tokens": 2},
		})
		return string(out)
	})
	exec, err := executor.NewOpenAI(executor.OpenAIConfig{URL: srv.URL, APIKey: "sk-test", Backoff: time.Millisecond, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := setup(t, options{cfg: func(c *jobs.Config) { c.Executor = exec; c.BatchParallelism = 1 }})
	id := f.createBatch([]string{"alpha", "beta", "gamma"}, nil)
	if j := f.settled(id); j.State != core.JobSucceeded {
		t.Fatalf("batch %s: %s %s", j.State, j.ErrorCode, j.ErrorMessage)
	}
	if n := calls.Load(); n != 5 {
		t.Fatalf("%d calls, want 5 (2 failures + 3 answers)", n)
	}
	r := f.call("GET", "/v1beta/files/batch-"+id+":download", nil).must(t, 200)
	lines := strings.Split(strings.TrimSpace(string(r.raw)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), r.raw)
	}
	for i, want := range []string{"alpha", "beta", "gamma"} {
		var line struct {
			Key      string `json:"key"`
			Response struct {
				Candidates []struct {
					Content executor.Content `json:"content"`
				} `json:"candidates"`
				Usage map[string]int `json:"usageMetadata"`
			} `json:"response"`
		}
		if err := json.Unmarshal([]byte(lines[i]), &line); err != nil {
			t.Fatal(err)
		}
		c := line.Response.Candidates[0].Content
		if line.Key != "k"+string(rune('0'+i)) || c.Text() != "echo: "+want || c.Role != "model" || line.Response.Usage["totalTokenCount"] != 5 {
			t.Fatalf("line %d: %s", i, lines[i])
		}
	}
}

// Function declarations, calls and results map to OpenAI tools,
// tool_calls and tool messages, and tool_calls come back as function
// calls.
func TestOpenAIFunctionCalling(t *testing.T) {
	t.Parallel()
	srv, _ := fakeOpenAI(t, nil, func(r *chatRequest) string {
		roles := []string{}
		for _, m := range r.Messages {
			roles = append(roles, m.Role)
		}
		switch {
		case strings.Join(roles, ",") != "system,user,assistant,tool":
			t.Errorf("roles %v", roles)
		case r.Messages[2].ToolCalls[0].ID != "c1" || r.Messages[2].ToolCalls[0].Function.Arguments != `{"city":"Paris"}`:
			t.Errorf("assistant message %+v", r.Messages[2])
		case r.Messages[3].ToolCallID != "c1" || *r.Messages[3].Content != `{"t":21}`:
			t.Errorf("tool message %+v", r.Messages[3])
		case len(r.Tools) != 1 || r.Tools[0].Function.Name != "get_weather" || r.Tools[0].Function.Parameters["type"] != "object":
			t.Errorf("tools %+v", r.Tools)
		case r.Model != "local-model" || r.MaxTokens != 64:
			t.Errorf("model %q max_tokens %d", r.Model, r.MaxTokens)
		}
		return `{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function",
			"function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},"finish_reason":"tool_calls"}]}`
	})
	exec, err := executor.NewOpenAI(executor.OpenAIConfig{URL: srv.URL + "/v1", APIKey: "sk-test", Model: "local-model"})
	if err != nil {
		t.Fatal(err)
	}
	turn := &executor.Turn{
		Model:  "models/gemini-2.5-flash",
		System: &executor.Content{Parts: []executor.Part{{Text: "be brief"}}},
		Contents: []executor.Content{
			{Role: "user", Parts: []executor.Part{{Text: "weather?"}}},
			{Role: "model", Parts: []executor.Part{{FunctionCall: &executor.FunctionCall{ID: "c1", Name: "get_weather", Args: json.RawMessage(`{"city": "Paris"}`)}}}},
			{Role: "user", Parts: []executor.Part{{FunctionResponse: &executor.FunctionResponse{ID: "c1", Name: "get_weather", Response: json.RawMessage(`{"t": 21}`)}}}},
		},
		Tools:  []executor.FunctionDecl{{Name: "get_weather", Parameters: json.RawMessage(`{"type":"OBJECT","properties":{"city":{"type":"STRING"}}}`)}},
		Config: executor.GenerationConfig{MaxOutputTokens: 64},
	}
	reply, err := exec.Generate(context.Background(), turn)
	if err != nil {
		t.Fatal(err)
	}
	calls := reply.FunctionCalls()
	if len(calls) != 1 || calls[0].ID != "call_9" || calls[0].Name != "get_weather" || string(calls[0].Args) != `{"city":"Rome"}` {
		t.Fatalf("reply %+v", reply)
	}
}

// A 400 is not retried; retries stop after MaxRetries.
func TestOpenAIErrors(t *testing.T) {
	t.Parallel()
	srv, calls := fakeOpenAI(t, []int{400}, nil)
	exec, _ := executor.NewOpenAI(executor.OpenAIConfig{URL: srv.URL, APIKey: "sk-test"})
	turn := &executor.Turn{Contents: []executor.Content{{Role: "user", Parts: []executor.Part{{Text: "x"}}}}}
	var ee *executor.Error
	if _, err := exec.Generate(context.Background(), turn); !errors.As(err, &ee) || ee.Code != "INVALID_ARGUMENT" || calls.Load() != 1 {
		t.Fatalf("400: %v after %d calls", err, calls.Load())
	}
	srv, calls = fakeOpenAI(t, []int{503, 503, 503}, nil)
	exec, _ = executor.NewOpenAI(executor.OpenAIConfig{URL: srv.URL, APIKey: "sk-test", MaxRetries: 2, Backoff: time.Millisecond})
	if _, err := exec.Generate(context.Background(), turn); !errors.As(err, &ee) || ee.Code != "UNAVAILABLE" || calls.Load() != 3 {
		t.Fatalf("503s: %v after %d calls", err, calls.Load())
	}
}

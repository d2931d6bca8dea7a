package executor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// Executor produces what jobs compute. Generate answers one model turn (a
// batch request or an interaction turn); RenderVideo writes a video file to
// path and returns its MIME type. Both must honour ctx: cancelling it
// (user cancel, expiry, shutdown) must make them return promptly.
//
// Errors of type *Error carry the job's error_code; an *Error with Fatal
// set fails a whole batch, any other error fails only its request.
type Executor interface {
	Generate(ctx context.Context, t *Turn) (*Reply, error)
	RenderVideo(ctx context.Context, v *VideoSpec, path string) (mimeType string, err error)
}

// VideoSpec is one video generation request.
type VideoSpec struct {
	Model  string
	Prompt string
	// Instance and Parameters are the request's raw instances[0] and
	// parameters, for executors that understand more than the prompt.
	Instance   json.RawMessage
	Parameters json.RawMessage
}

// Error is an execution failure with a Google status name as Code
// (INTERNAL, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, ...).
type Error struct {
	Code    string
	Message string
	// Fatal fails the whole batch instead of one request.
	Fatal bool
}

// Error returns "CODE: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrUnsupported is returned by executors for work they do not do (e.g.
// video on a text-only backend).
var ErrUnsupported = errors.New("not supported by this executor")

// Combine returns an Executor that sends Generate to text and RenderVideo
// to video.
func Combine(text, video Executor) Executor { return combined{text, video} }

type combined struct{ text, video Executor }

// Generate implements Executor with the text executor.
func (c combined) Generate(ctx context.Context, t *Turn) (*Reply, error) {
	return c.text.Generate(ctx, t)
}

// RenderVideo implements Executor with the video executor.
func (c combined) RenderVideo(ctx context.Context, v *VideoSpec, path string) (string, error) {
	return c.video.RenderVideo(ctx, v, path)
}

// Failure markers the Simulator recognises in a request's text.
const (
	// MarkerFail fails the job (a whole batch, the interaction, the video).
	MarkerFail = "[[fail]]"
	// MarkerFailRequest fails one batch request; the batch still succeeds.
	MarkerFailRequest = "[[fail_request]]"
	// MarkerExpire makes the request never finish, so its batch expires
	// (or can be cancelled).
	MarkerExpire = "[[expire]]"
	// MarkerRequiresAction makes the model call the first declared
	// function (it also calls a function whose name the text mentions).
	MarkerRequiresAction = "[[requires_action]]"
	// MarkerHold makes the request wait, before its simulated time, until
	// SimulatorConfig.HoldFile exists (without a HoldFile it does
	// nothing): a test holds jobs mid-run for as long as it needs, across
	// restarts, and releases them by creating the file.
	MarkerHold = "[[hold]]"
)

// SimulatorConfig configures the Simulator.
type SimulatorConfig struct {
	// Durations is how long one turn or video takes, per job kind (zero:
	// instant). Divided by Scale.
	Durations map[core.JobKind]time.Duration
	Scale     float64
	// Clock times the durations (default core.SystemClock).
	Clock core.Clock
	// FailKinds fails every job of these kinds, as if each carried
	// MarkerFail.
	FailKinds []core.JobKind
	// HoldFile releases the requests that carry MarkerHold once it exists.
	HoldFile string
}

// Simulator is a deterministic fake model: the same turn always gets the
// same answer. It echoes the user's text, calls declared functions on
// MarkerRequiresAction (or when the text names one), reports function
// results back, writes a minimal valid MP4 for videos, and obeys the
// failure markers.
type Simulator struct {
	cfg SimulatorConfig
}

// NewSimulator returns a Simulator.
func NewSimulator(cfg SimulatorConfig) *Simulator {
	if cfg.Clock == nil {
		cfg.Clock = core.SystemClock{}
	}
	if cfg.Scale <= 0 {
		cfg.Scale = 1
	}
	return &Simulator{cfg: cfg}
}

func (s *Simulator) fails(k core.JobKind) bool {
	for _, f := range s.cfg.FailKinds {
		if f == k {
			return true
		}
	}
	return false
}

// agentSteps are the steps of a simulated agent turn.
var agentSteps = []string{"planning the research", "reading the sources", "writing the report"}

// wait spends the kind's duration, or returns ctx's error.
func (s *Simulator) wait(ctx context.Context, k core.JobKind) error {
	return s.sleep(ctx, s.cfg.Durations[k])
}

// sleep spends d divided by the scale on the clock, or returns ctx's error.
func (s *Simulator) sleep(ctx context.Context, d time.Duration) error {
	d = time.Duration(float64(d) / s.cfg.Scale)
	if d <= 0 {
		return ctx.Err()
	}
	t := s.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// hold waits until the HoldFile exists (looking every 10 ms) or ctx ends.
func (s *Simulator) hold(ctx context.Context) error {
	if s.cfg.HoldFile == "" {
		return nil
	}
	for {
		if _, err := os.Stat(s.cfg.HoldFile); err == nil {
			return nil
		}
		t := s.cfg.Clock.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
	}
}

// Generate implements Executor.
func (s *Simulator) Generate(ctx context.Context, t *Turn) (*Reply, error) {
	if len(t.Contents) == 0 {
		return nil, &Error{Code: "INVALID_ARGUMENT", Message: "the request has no contents"}
	}
	last := t.Contents[len(t.Contents)-1]
	text := last.Text()
	switch {
	case strings.Contains(text, MarkerFail) || s.fails(t.Kind):
		return nil, &Error{Code: "INTERNAL", Message: "Simulated failure (" + MarkerFail + ").", Fatal: true}
	case strings.Contains(text, MarkerFailRequest):
		return nil, &Error{Code: "INVALID_ARGUMENT", Message: "Simulated request failure (" + MarkerFailRequest + ")."}
	case strings.Contains(text, MarkerExpire):
		<-ctx.Done()
		return nil, ctx.Err()
	case strings.Contains(text, MarkerHold):
		if err := s.hold(ctx); err != nil {
			return nil, err
		}
	}
	if t.Agent != "" {
		// An agent works in steps, each taking a share of the duration.
		for i, note := range agentSteps {
			if err := s.sleep(ctx, s.cfg.Durations[t.Kind]/time.Duration(len(agentSteps))); err != nil {
				return nil, err
			}
			if t.Progress != nil {
				t.Progress(fmt.Sprintf("Step %d of %d: %s", i+1, len(agentSteps), note))
			}
		}
	} else if err := s.wait(ctx, t.Kind); err != nil {
		return nil, err
	}
	prompt := promptTokens(t)
	for _, p := range last.Parts {
		if p.FunctionResponse != nil {
			return s.reply(prompt, fmt.Sprintf("The function %s returned %s.", p.FunctionResponse.Name, compactJSON(p.FunctionResponse.Response))), nil
		}
	}
	if fd := calledFunction(t, text); fd != nil {
		sum := sha256.Sum256([]byte(fd.Name + "\x00" + text))
		call := &FunctionCall{ID: "call_" + hex.EncodeToString(sum[:6]), Name: fd.Name, Args: json.RawMessage(`{}`)}
		return &Reply{Parts: []Part{{FunctionCall: call}}, FinishReason: "STOP", Usage: Usage{PromptTokens: prompt, OutputTokens: 1}}, nil
	}
	return s.reply(prompt, "Simulated response to: "+truncate(strings.TrimSpace(text), 200)), nil
}

func (s *Simulator) reply(prompt int, text string) *Reply {
	return &Reply{Parts: []Part{{Text: text}}, FinishReason: "STOP",
		Usage: Usage{PromptTokens: prompt, OutputTokens: len(strings.Fields(text))}}
}

// calledFunction returns the declared function the simulated model calls:
// the one the text names, else the first on MarkerRequiresAction.
func calledFunction(t *Turn, text string) *FunctionDecl {
	if len(t.Tools) == 0 {
		return nil
	}
	for i := range t.Tools {
		if strings.Contains(text, t.Tools[i].Name) {
			return &t.Tools[i]
		}
	}
	if strings.Contains(text, MarkerRequiresAction) {
		return &t.Tools[0]
	}
	return nil
}

// promptTokens approximates a prompt's tokens as its words.
func promptTokens(t *Turn) int {
	n := 0
	for _, c := range t.Contents {
		n += len(strings.Fields(c.Text()))
	}
	return max(n, 1)
}

// RenderVideo implements Executor: it writes a minimal MP4.
func (s *Simulator) RenderVideo(ctx context.Context, v *VideoSpec, path string) (string, error) {
	if strings.Contains(v.Prompt, MarkerFail) || s.fails(core.JobVideo) {
		return "", &Error{Code: "INTERNAL", Message: "Simulated failure (" + MarkerFail + ").", Fatal: true}
	}
	if strings.Contains(v.Prompt, MarkerExpire) {
		<-ctx.Done()
		return "", ctx.Err()
	}
	if err := s.wait(ctx, core.JobVideo); err != nil {
		return "", err
	}
	return "video/mp4", os.WriteFile(path, MinimalMP4(), 0o600)
}

// MinimalMP4 returns a small valid ISO BMFF file: an ftyp box and a moov
// box holding a one-second movie header (no tracks).
func MinimalMP4() []byte {
	box := func(typ string, payload []byte) []byte {
		b := make([]byte, 8, 8+len(payload))
		binary.BigEndian.PutUint32(b, uint32(8+len(payload)))
		copy(b[4:], typ)
		return append(b, payload...)
	}
	ftyp := []byte("isom\x00\x00\x02\x00isomiso2mp41")
	var mvhd bytes.Buffer
	w := func(v any) { _ = binary.Write(&mvhd, binary.BigEndian, v) }
	w(uint32(0))                                 // version 0, flags
	w(uint32(0))                                 // creation time
	w(uint32(0))                                 // modification time
	w(uint32(1000))                              // timescale
	w(uint32(1000))                              // duration: 1 s
	w(uint32(0x00010000))                        // rate 1.0
	w(uint16(0x0100))                            // volume 1.0
	mvhd.Write(make([]byte, 10))                 // reserved
	for _, m := range []uint32{0x00010000, 0, 0, // unity matrix
		0, 0x00010000, 0,
		0, 0, 0x40000000} {
		w(m)
	}
	mvhd.Write(make([]byte, 24)) // pre_defined
	w(uint32(1))                 // next track id
	return append(box("ftyp", ftyp), box("moov", box("mvhd", mvhd.Bytes()))...)
}

// Command renders videos with an operator-configured program. The
// program gets its output path as LONGHOOK_OUTPUT, and the request as
// LONGHOOK_VIDEO_PROMPT, LONGHOOK_VIDEO_MODEL, LONGHOOK_VIDEO_INSTANCE and
// LONGHOOK_VIDEO_PARAMETERS (JSON); it must write the video to
// LONGHOOK_OUTPUT and exit 0. Of the server's own environment it inherits
// only an allow-list (PATH, HOME, locale, TZ, TMPDIR: commandEnvAllowed).
// It does not generate text.
type Command struct {
	// Path and Args are the program and its arguments (no shell).
	Path string
	Args []string
	// MIMEType of the files it writes (default video/mp4).
	MIMEType string
}

// Generate implements Executor: text is not supported.
func (c *Command) Generate(context.Context, *Turn) (*Reply, error) {
	return nil, &Error{Code: "UNIMPLEMENTED", Message: "the command executor only renders videos", Fatal: true}
}

// RenderVideo implements Executor.
func (c *Command) RenderVideo(ctx context.Context, v *VideoSpec, path string) (string, error) {
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env = append(commandEnv(os.Environ()),
		"LONGHOOK_OUTPUT="+path,
		"LONGHOOK_VIDEO_PROMPT="+v.Prompt,
		"LONGHOOK_VIDEO_MODEL="+v.Model,
		"LONGHOOK_VIDEO_INSTANCE="+string(v.Instance),
		"LONGHOOK_VIDEO_PARAMETERS="+string(v.Parameters),
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &Error{Code: "INTERNAL", Message: fmt.Sprintf("video command failed: %v: %s", err, truncate(strings.TrimSpace(out.String()), 512)), Fatal: true}
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		return "", &Error{Code: "INTERNAL", Message: "video command exited 0 but wrote no file to LONGHOOK_OUTPUT", Fatal: true}
	}
	if c.MIMEType != "" {
		return c.MIMEType, nil
	}
	return "video/mp4", nil
}

// commandEnvAllowed are the variables of the server's environment a video
// command inherits. Nothing else passes: the server's environment holds
// LONGHOOK_MASTER_KEY, database URLs with passwords and the like, which an
// operator's rendering program has no business seeing.
var commandEnvAllowed = map[string]bool{
	"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true,
	"TMPDIR": true, "TZ": true, "LANG": true, "LC_ALL": true, "LC_CTYPE": true,
}

// commandEnv keeps the allowed variables of environ.
func commandEnv(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if name, _, _ := strings.Cut(kv, "="); commandEnvAllowed[name] {
			out = append(out, kv)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// compactJSON renders raw compactly for messages ("null" when empty).
func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if len(raw) == 0 || json.Compact(&b, raw) != nil {
		return "null"
	}
	return b.String()
}

// Config selects and builds executors, e.g. from serve's flags.
type Config struct {
	// Kind is "simulator" (default) or "openai" (text turns go to
	// OpenAI.URL; videos still need the simulator or VideoCommand).
	Kind string
	// SimDurations is how long the simulator takes per turn and per video:
	// one duration for every kind ("2s") or per kind
	// ("batch=2s,video=10s,interaction=1s"). Divided by Scale.
	SimDurations string
	Scale        float64
	Clock        core.Clock
	OpenAI       OpenAIConfig
	// VideoCommand, when set, renders videos with this program (its
	// arguments separated by spaces; no shell).
	VideoCommand string
	// SimHoldFile is the simulator's HoldFile (MarkerHold).
	SimHoldFile string
}

// New builds the executor Config describes.
func New(c Config) (Executor, error) {
	durs, err := ParseDurations(c.SimDurations)
	if err != nil {
		return nil, err
	}
	sim := NewSimulator(SimulatorConfig{Durations: durs, Scale: c.Scale, Clock: c.Clock, HoldFile: c.SimHoldFile})
	var text, video Executor = sim, sim
	switch c.Kind {
	case "", "simulator":
	case "openai":
		if c.OpenAI.Clock == nil {
			c.OpenAI.Clock = c.Clock
		}
		o, err := NewOpenAI(c.OpenAI)
		if err != nil {
			return nil, err
		}
		text = o
	default:
		return nil, fmt.Errorf("executor: unknown executor %q (simulator, openai)", c.Kind)
	}
	if c.VideoCommand != "" {
		args := strings.Fields(c.VideoCommand)
		video = &Command{Path: args[0], Args: args[1:]}
	}
	return Combine(text, video), nil
}

// ParseDurations reads "2s" (every kind) or "batch=2s,video=10s,
// interaction=1s" (missing kinds: instant).
func ParseDurations(s string) (map[core.JobKind]time.Duration, error) {
	out := map[core.JobKind]time.Duration{}
	s = strings.TrimSpace(s)
	if s == "" {
		return out, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		for _, k := range []core.JobKind{core.JobBatch, core.JobVideo, core.JobInteraction} {
			out[k] = d
		}
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		d, err := time.ParseDuration(v)
		switch kind := core.JobKind(k); {
		case !ok || err != nil || d < 0:
			return nil, fmt.Errorf("executor: bad duration %q: want KIND=DURATION, e.g. batch=2s", part)
		case kind != core.JobBatch && kind != core.JobVideo && kind != core.JobInteraction:
			return nil, fmt.Errorf("executor: unknown job kind %q (batch, video, interaction)", k)
		default:
			out[kind] = d
		}
	}
	return out, nil
}

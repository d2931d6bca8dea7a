// Package listen is `longhook listen`: it connects out to a listen stream
// (Server-Sent Events) — a gateway source's (see gateway.ListenPath) or a
// serve instance's webhook (see relay.Event) — forwards each event to a
// local URL, and remembers the last event it forwarded, so a laptop or a
// private network receives webhooks without an inbound port and resumes
// where it left off after a disconnect or a restart.
//
// Delivery to the local URL is at-least-once and in stream order: an
// event is retried until the local receiver answers 2xx or refuses it
// with a 4xx (408, 425 and 429 are retried), and the position is saved
// only after that.
package listen

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/longhook/longhook/internal/core"
	"github.com/longhook/longhook/internal/envflag"
	"github.com/longhook/longhook/internal/gateway"
	"github.com/longhook/longhook/internal/relay"
)

const (
	// idleTimeout is how long a stream may stay silent (the gateway sends
	// a ping every 15 s) before the connection is presumed dead.
	idleTimeout = 45 * time.Second
	minBackoff  = 250 * time.Millisecond
	maxBackoff  = 15 * time.Second
	// healthySession is how long a session that moved no event must last
	// to count as progress (a quiet stream that a proxy cut).
	healthySession = 30 * time.Second
)

// maxEventLine bounds one SSE line: a body of up to the gateway's largest
// max_body_bytes with listen_tokens, base64 in JSON. A variable for the
// test of an event over it.
var maxEventLine = gateway.MaxStreamLine

// errFatal marks errors that reconnecting cannot fix (bad token or API
// key, unknown source or webhook).
var errFatal = errors.New("listen: not retryable")

// RunListen is `longhook listen --from URL --forward-to URL`.
//
// Flags, each falling back to its variable (envflag.Name: --from →
// LONGHOOK_FROM): --from, the stream URL: a gateway source's, e.g.
// https://gw.example.com/_longhook/listen/gemini, or a serve instance's
// webhook, e.g. http://127.0.0.1:8080/v1beta/webhooks/<id>; --forward-to;
// --token, one of the gateway source's listen_tokens; --api-key, an API
// key of the webhook's project on serve; --state, the file holding the
// last forwarded position (default: in the user cache directory, one per
// --from); --after, the position to start from when no state exists
// (default: only events from now on; 0: everything the server still
// holds; or a position, a delivery id on serve); --timeout, per local
// delivery (default 10 s); --log-level. LONGHOOK_LISTEN_FROM,
// LONGHOOK_LISTEN_FORWARD_TO, LONGHOOK_LISTEN_TOKEN and
// LONGHOOK_LISTEN_STATE, the names before the rule, still work with a
// warning on stderr. It runs until ctx is cancelled (returning nil) or the
// server refuses the credentials, the source or the webhook (returning an
// error).
func RunListen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := envflag.New("listen", getenv, stderr)
	fs.Describe("longhook listen --from URL --forward-to URL [flags]", `Relays a serve webhook's events (--from http://HOST/v1beta/webhooks/ID --api-key KEY) or a
gateway source's (--from https://GW/_longhook/listen/SOURCE --token T) to a local URL over an
outbound connection, signed as the sender signs them, resuming where it stopped (--state).

Examples:
  longhook listen --from http://127.0.0.1:8080/v1beta/webhooks/ID --api-key KEY --forward-to http://127.0.0.1:3000/hooks`)
	from := fs.String("from", "", "listen stream URL of a gateway source, or a serve webhook URL (…/v1beta/webhooks/<id>)")
	to := fs.String("forward-to", "", "local URL to POST events to")
	token := fs.String("token", "", "bearer token of the gateway source's listen stream")
	apiKey := fs.String("api-key", "", "API key of the webhook's project, for --from a serve webhook URL")
	statePath := fs.String("state", "", "file that keeps the last forwarded position")
	after := fs.String("after", "", "start position when there is no state: empty or -1 = new events only, 0 = all retained events, or a position (a delivery id on serve)")
	timeout := fs.Duration("timeout", 10*time.Second, "timeout of one local delivery")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Alias("from", "LONGHOOK_LISTEN_FROM")
	fs.Alias("forward-to", "LONGHOOK_LISTEN_FORWARD_TO")
	fs.Alias("token", "LONGHOOK_LISTEN_TOKEN")
	fs.Alias("state", "LONGHOOK_LISTEN_STATE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("listen: %w: unexpected argument %q", envflag.ErrUsage, fs.Arg(0))
	}
	for _, d := range fs.Deprecated() {
		fmt.Fprintln(stderr, "listen: warning:", d)
	}
	if err := checkURL("--from", *from); err != nil {
		return err
	}
	if err := checkURL("--forward-to", *to); err != nil {
		return err
	}
	if *timeout <= 0 {
		return fmt.Errorf("listen: %w: --timeout %s: want a positive duration (a local delivery without one could hang the stream)", envflag.ErrUsage, *timeout)
	}
	l := &listener{from: *from, to: *to, statePath: *statePath, timeout: *timeout, pos: -1, recent: map[string]struct{}{}}
	if stream, ok := serveStreamURL(*from); ok {
		if *apiKey == "" {
			return fmt.Errorf("listen: %w: --api-key is required (or LONGHOOK_API_KEY) to listen to a serve webhook", envflag.ErrUsage)
		}
		l.serve, l.streamURL, l.apiKey = true, stream, *apiKey
	} else {
		if *token == "" {
			return fmt.Errorf("listen: %w: --token is required (or LONGHOOK_TOKEN)", envflag.ErrUsage)
		}
		l.streamURL, l.token = *from, *token
	}
	if err := l.setStart(*after); err != nil {
		return err
	}
	log, err := gateway.NewLogger(stderr, *logLevel, "text")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if *statePath == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("listen: no --state and no cache directory: %w", err)
		}
		sum := sha256.Sum256([]byte(*from))
		*statePath = filepath.Join(dir, "longhook", "listen-"+hex.EncodeToString(sum[:6])+".json")
	}
	l.statePath, l.log = *statePath, log
	// Neither client follows redirects: the stream request carries the API
	// key or token, which must never go to another host.
	l.stream, l.local = &http.Client{CheckRedirect: noRedirect}, &http.Client{Timeout: *timeout, CheckRedirect: noRedirect}
	if err := l.loadState(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "longhook listen: %s → %s (position %s, state %s)\n", *from, *to, l.posText(), *statePath)
	return l.run(ctx)
}

type listener struct {
	from, to      string
	streamURL     string // from, or the serve webhook's :listen URL
	token         string // gateway: bearer token
	apiKey        string // serve: API key
	serve         bool   // from is a serve webhook, not a gateway source
	statePath     string
	timeout       time.Duration
	log           *slog.Logger
	stream, local *http.Client
	pos           int64               // gateway: last forwarded position; -1 = unknown (start at the newest)
	cursor        string              // serve: resume cursor; "" = unknown (start at the newest)
	recent        map[string]struct{} // serve: ids forwarded above cursor
	skew          time.Duration       // the server's or gateway's clock minus ours
}

type state struct {
	From   string   `json:"from"`
	After  int64    `json:"after"`
	Cursor string   `json:"cursor,omitempty"` // serve streams
	Recent []string `json:"recent,omitempty"` // serve: ids forwarded above Cursor
}

func (l *listener) posText() string {
	switch {
	case l.serve && l.cursor != "":
		return l.cursor
	case !l.serve && l.pos >= 0:
		return strconv.FormatInt(l.pos, 10)
	}
	return "new events only"
}

// setStart applies --after.
func (l *listener) setStart(after string) error {
	switch {
	case after == "" || after == "-1":
	case l.serve && after == "0":
		l.cursor = relay.FromStart
	case l.serve:
		if !core.ValidMessageID(after) {
			return fmt.Errorf("listen: %w: --after %q: want 0, -1 or a delivery id (msg_…)", envflag.ErrUsage, after)
		}
		l.cursor = after
	default:
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("listen: %w: --after %q: want a position (0 or more) or -1", envflag.ErrUsage, after)
		}
		l.pos = n
	}
	return nil
}

func (l *listener) loadState() error {
	b, err := os.ReadFile(l.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listen: state: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("listen: state %s: %w", l.statePath, err)
	}
	if s.From != l.from {
		l.log.Warn("listen.state: saved for another stream, ignoring it", slog.String("state_from", s.From))
		return nil
	}
	if l.serve {
		if s.Cursor != "" && !core.ValidMessageID(s.Cursor) {
			return fmt.Errorf("listen: state %s: %q is not a delivery id", l.statePath, s.Cursor)
		}
		l.cursor = s.Cursor
		for _, id := range s.Recent {
			l.recent[id] = struct{}{}
		}
		return nil
	}
	l.pos = s.After
	return nil
}

// saveState writes the position atomically (temporary file, rename), so
// a crash leaves the old or the new position, never a torn file.
func (l *listener) saveState() error {
	st := state{From: l.from, After: l.pos, Cursor: l.cursor}
	if l.serve {
		st.After = -1
		if len(l.recent) <= maxSavedRecent {
			st.Recent = slices.Sorted(maps.Keys(l.recent))
		}
	}
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Dir(l.statePath), 0o700); err != nil {
		return err
	}
	tmp := l.statePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, l.statePath)
}

// run reconnects with backoff until ctx is done or the gateway refuses.
// The backoff starts again from minBackoff only after a session that made
// progress: one that moved the position, ended to be signed again, or
// lasted healthySession. A session that connects and fails at once, the
// same way each time (an event it cannot read), backs off like a refused
// connection instead of reconnecting four times a second for ever.
func (l *listener) run(ctx context.Context) error {
	backoff := minBackoff
	for {
		start, before := time.Now(), l.posText()
		connected, err := l.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errFatal) {
			return err
		}
		if connected && (l.posText() != before || errors.Is(err, errResign) || time.Since(start) >= healthySession) {
			backoff = minBackoff
		}
		l.log.Warn("listen.disconnected", slog.Any("error", err), slog.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session runs one connection; progressed reports whether it got as far
// as the stream (so the next reconnect need not back off).
func (l *listener) session(ctx context.Context) (progressed bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	u, err := url.Parse(l.streamURL)
	if err != nil {
		return false, fmt.Errorf("%w: %v", errFatal, err)
	}
	if l.serve && l.cursor != "" || !l.serve && l.pos >= 0 {
		q := u.Query()
		q.Set("after", l.posText())
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, fmt.Errorf("%w: %v", errFatal, err)
	}
	if l.serve {
		req.Header.Set("x-goog-api-key", l.apiKey)
	} else {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := l.stream.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusBadRequest:
		// Reconnecting with the same request cannot help. A refused
		// position (a gateway's from another inbox) came from --after or
		// the state file, which the user must be told to clear.
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		text := strings.TrimSpace(string(msg))
		if strings.Contains(text, "after") {
			text += fmt.Sprintf(" (position %s, from --after or the state file %s: remove the state file or pass another --state)", l.posText(), l.statePath)
		}
		return false, fmt.Errorf("%w: %s answered 400: %s", errFatal, l.peer(), text)
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden, resp.StatusCode == http.StatusNotFound:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("%w: %w", errFatal, &RefusedError{Peer: l.peer(), Status: resp.StatusCode, Message: errorMessage(msg)})
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return false, fmt.Errorf("%w: %s answered %d, a redirect to %q: longhook listen does not follow redirects (credentials must not go to another URL); use the final URL",
			errFatal, l.peer(), resp.StatusCode, resp.Header.Get("Location"))
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("%s answered %d", l.peer(), resp.StatusCode)
	}
	l.log.Info("listen.connected", slog.String("position", l.posText()))

	// The watchdog cuts a connection that stays silent past idleTimeout.
	alive := make(chan struct{}, 1)
	go func() {
		t := time.NewTimer(idleTimeout)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-alive:
				t.Reset(idleTimeout)
			case <-t.C:
				l.log.Warn("listen.idle: no data from the "+l.peer()+", reconnecting", slog.Duration("after", idleTimeout))
				cancel()
				return
			}
		}
	}()
	err = readEvents(resp.Body, func() {
		select {
		case alive <- struct{}{}:
		default:
		}
	}, func(event string, data []byte) error { return l.dispatch(ctx, event, data) })
	if errors.Is(err, bufio.ErrTooLong) {
		// The same event comes first again on every reconnect: reading it
		// in a loop would hold every later event behind it for ever.
		return true, fmt.Errorf("%w: %v: an event after position %s is larger than listen reads (%d MiB); skip it with a new --state and --after set to its position",
			errFatal, err, l.posText(), maxEventLine>>20)
	}
	return true, err
}

// RefusedError is a stream the server refused for good: a key or token it
// does not take (401, 403) or a webhook or source it does not have (404).
// The CLI maps it to its exit codes (4 not authorized, 5 not found).
type RefusedError struct {
	Peer    string // what refused: "serve" or "gateway" and its URL
	Status  int    // the HTTP status
	Message string // the server's message (the error envelope's), or its body
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s answered %d: %s", e.Peer, e.Status, e.Message)
}

// errorMessage is the message of a Google error envelope
// ({"error":{"message":…}}) serve and the gateway answer with, or the body
// as it came when it is not one.
func errorMessage(body []byte) string {
	var env struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error.Message != "" {
		return env.Error.Message
	}
	return strings.TrimSpace(string(body))
}

// readEvents parses a Server-Sent Events stream: it calls line for every
// line read and dispatch for every complete event (its "event" field and
// its "data" lines joined by newlines); comments and other fields are
// ignored, and a line longer than maxEventLine ends the stream with an
// error wrapping bufio.ErrTooLong (naming the event's id when its id line
// came first). It returns dispatch's first error, the read error, or
// io.ErrUnexpectedEOF when the stream ends (a stream never ends by itself).
func readEvents(r io.Reader, line func(), dispatch func(event string, data []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	var event, id string
	var data bytes.Buffer
	for sc.Scan() {
		line()
		b := sc.Bytes()
		switch {
		case len(b) == 0:
			if err := dispatch(event, data.Bytes()); err != nil {
				return err
			}
			event = ""
			data.Reset()
		case b[0] == ':':
		default:
			field, value, _ := bytes.Cut(b, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				event = string(value)
			case "id":
				id = string(value)
			case "data":
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) && id != "" {
			return fmt.Errorf("event id %.40q: %w", id, err) // the id line comes before the data
		}
		return err
	}
	return io.ErrUnexpectedEOF
}

// dispatch handles one complete SSE event.
func (l *listener) dispatch(ctx context.Context, event string, data []byte) error {
	if l.serve {
		return l.dispatchServe(ctx, event, data)
	}
	switch event {
	case relay.EventReady:
		var r gateway.StreamReady
		if err := json.Unmarshal(data, &r); err != nil {
			return fmt.Errorf("bad ready event: %w", err)
		}
		if !r.Time.IsZero() {
			l.skew = time.Until(r.Time)
		}
		if l.pos < 0 {
			// Pin "from now on" to a position, so a reconnect does not
			// skip what arrives in between.
			l.pos = r.After
			if err := l.saveState(); err != nil {
				return fmt.Errorf("%w: save state: %v", errFatal, err)
			}
		}
		return nil
	case relay.EventWebhook:
		var e gateway.StreamEvent
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("bad webhook event: %w", err)
		}
		if e.Seq <= l.pos {
			return nil // already forwarded before a reconnect
		}
		if err := l.forward(ctx, &e); err != nil {
			return err // errResign: the reconnect resumes below e
		}
		l.pos = e.Seq
		if err := l.saveState(); err != nil {
			return fmt.Errorf("%w: save state: %v", errFatal, err)
		}
	}
	return nil
}

// forward POSTs a gateway event to the local URL until it answers 2xx or
// rejects it, or until the signature the gateway made for it when it
// streamed it is too old to be accepted (errResign). An event the gateway
// did not sign again keeps its sender's signature, whatever its age.
func (l *listener) forward(ctx context.Context, e *gateway.StreamEvent) error {
	attrs := []slog.Attr{slog.Int64("seq", e.Seq), slog.String("webhook_id", e.WebhookID), slog.String("type", e.Type)}
	var stale func() error
	if e.Resigned {
		stale = func() error { return l.staleSignature(e.Header) }
	}
	return l.deliver(ctx, attrs, func(ctx context.Context) (int, error) {
		return l.post(ctx, e.Header, e.Body,
			gateway.HeaderSource, e.Source,
			gateway.HeaderReceivedAt, e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}, stale)
}

// deliver runs send until it answers 2xx or a 4xx that rejects the event
// (logged, not retried), with backoff, or until ctx ends between
// attempts. Before every attempt it asks stale (when set), and returns
// its error if it has one.
func (l *listener) deliver(ctx context.Context, attrs []slog.Attr, send func(context.Context) (int, error), stale func() error) error {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		if stale != nil {
			if err := stale(); err != nil {
				return err
			}
		}
		start := time.Now()
		// An attempt under way finishes (within --timeout) even if ctx
		// ends, so a stop right after the receiver took the event still
		// saves the position instead of forwarding it again on restart.
		status, err := send(context.WithoutCancel(ctx))
		attrs := append(attrs[:len(attrs):len(attrs)], slog.Int("attempt", attempt), slog.Duration("duration", time.Since(start)))
		if err == nil && status/100 == 2 {
			l.log.LogAttrs(ctx, slog.LevelInfo, "listen.forward", append(attrs, slog.Int("status", status))...)
			return nil
		}
		if err == nil && rejects(status) {
			// The local app judged this event and refused it (a bad
			// signature, a payload it cannot read): the same request would
			// get the same answer, and retrying it forever would hold back
			// every event behind it. It is reported and passed, as a
			// developer tunnel (stripe listen, svix listen) does; the
			// position moves on, and --after with a new --state replays it.
			l.log.LogAttrs(ctx, slog.LevelError, "listen.forward.rejected: the local receiver refused this event with a 4xx; it is not retried",
				append(attrs, slog.Int("status", status))...)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			attrs = append(attrs, slog.Any("error", err))
		} else {
			attrs = append(attrs, slog.Int("status", status))
		}
		l.log.LogAttrs(ctx, slog.LevelWarn, "listen.forward", append(attrs, slog.Duration("retry_in", backoff))...)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// post sends body and header verbatim to the local URL, with the extra
// headers set on top, and returns the status.
func (l *listener) post(ctx context.Context, header http.Header, body []byte, extra ...string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.to, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.local.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// rejects reports whether a local answer is the receiver's verdict on the
// event rather than a passing condition: a 4xx other than 408 Request
// Timeout, 425 Too Early and 429 Too Many Requests, which ask for the
// request again later.
func rejects(status int) bool {
	return status/100 == 4 && status != http.StatusRequestTimeout && status != http.StatusTooEarly && status != http.StatusTooManyRequests
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func checkURL(flagName, s string) error {
	if s == "" {
		return fmt.Errorf("listen: %w: %s is required", envflag.ErrUsage, flagName)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("listen: %w: %s %q is not an absolute http(s) URL", envflag.ErrUsage, flagName, s)
	}
	return nil
}

package postgres

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/longhook/longhook/internal/core"
)

// notifyWindow is the sender-side debounce: a store sends at most one
// NOTIFY per window (plus one trailing NOTIFY for what the window held
// back). NOTIFY serialises committing transactions on a database-wide
// lock, so a busy publisher must not send one per commit.
const notifyWindow = 2 * time.Millisecond

// Listener timings: how long the listener waits for a notification
// before pinging its connection (a silently dead TCP connection would
// otherwise go unnoticed), and its reconnect backoff.
const (
	listenPingInterval = 30 * time.Second
	listenMinBackoff   = 100 * time.Millisecond
	listenMaxBackoff   = 5 * time.Second
)

// notifier debounces this store's NOTIFYs. A transaction that commits new
// due work asks lead(): if no NOTIFY went out in the last window, the
// transaction carries `SELECT pg_notify(...)` itself (it fires on commit,
// at no extra round trip). Otherwise, after the commit, follow() schedules
// one trailing NOTIFY at the end of the window, sent by notifyLoop. Every
// commit is therefore followed by a NOTIFY within about one window, and
// a burst of commits sends at most two.
type notifier struct {
	channel string
	payload string // the sending store's id; its own listener ignores it

	mu       sync.Mutex
	last     time.Time // when the last NOTIFY was sent (or queued in a tx)
	trailing bool      // a trailing NOTIFY is due
	kick     chan struct{}
}

func newNotifier(channel, payload string) *notifier {
	return &notifier{channel: channel, payload: payload, kick: make(chan struct{}, 1)}
}

// lead reports whether the caller's transaction should send the NOTIFY.
func (n *notifier) lead() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if n.trailing || now.Sub(n.last) < notifyWindow {
		return false
	}
	n.last = now
	return true
}

// follow is called after a commit whose transaction did not lead.
func (n *notifier) follow() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.trailing {
		n.trailing = true
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// takeTrailing clears and returns the trailing flag (used on Close).
func (n *notifier) takeTrailing() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	t := n.trailing
	n.trailing = false
	return t
}

// queueNotify adds the NOTIFY to b if this commit leads; the result is
// passed to committed.
func (s *Store) queueNotify(b *pgx.Batch) bool {
	if !s.notify.lead() {
		return false
	}
	b.Queue(`SELECT pg_notify($1, $2)`, s.notify.channel, s.notify.payload)
	return true
}

// notifyInTx sends the NOTIFY inside tx if this commit leads.
func (s *Store) notifyInTx(ctx context.Context, tx pgx.Tx) (bool, error) {
	if !s.notify.lead() {
		return false, nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.notify.channel, s.notify.payload)
	return true, err
}

// committed signals this process's waiters and makes sure other
// processes hear of the commit.
func (s *Store) committed(led bool) {
	s.signal()
	if !led {
		s.notify.follow()
	}
}

func (s *Store) sendNotify(ctx context.Context) error {
	return s.run(ctx, true, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_notify($1, $2)`, s.notify.channel, s.notify.payload)
		return err
	})
}

// notifyLoop sends the trailing NOTIFYs.
func (s *Store) notifyLoop(ctx context.Context) {
	defer s.wg.Done()
	n := s.notify
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		n.mu.Lock()
		wait := notifyWindow - time.Since(n.last)
		n.mu.Unlock()
		if wait > 0 && !core.Sleep(ctx, wait) {
			return
		}
		n.mu.Lock()
		if !n.trailing { // taken by Close
			n.mu.Unlock()
			continue
		}
		n.trailing = false
		n.last = time.Now()
		n.mu.Unlock()
		if err := s.sendNotify(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("postgres.notify_failed", slog.String("error", err.Error()))
		}
	}
}

// connectListener opens the listener's own connection (outside the pool:
// LISTEN is session state) and subscribes to the wake channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	c, err := connect(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{s.notify.channel}.Sanitize()); err != nil {
		closeConn(c)
		return nil, err
	}
	return c, nil
}

// listen forwards notifications from other stores to Wake. When its
// connection fails (a PostgreSQL restart, a network cut) it reconnects
// with exponential backoff and jitter, then signals Wake once: work may
// have been committed while it was not listening.
func (s *Store) listen(ctx context.Context, c *pgx.Conn) {
	defer s.wg.Done()
	backoff := listenMinBackoff
	for {
		if c != nil {
			up := time.Now()
			err := s.listenOn(ctx, c)
			closeConn(c)
			c = nil
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("postgres.listener_lost", slog.String("error", err.Error()))
			if time.Since(up) > time.Minute {
				backoff = listenMinBackoff
			}
		}
		if !core.Sleep(ctx, backoff/2+rand.N(backoff)) {
			return
		}
		backoff = min(2*backoff, listenMaxBackoff)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nc, err := s.connectListener(cctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("postgres.listener_reconnect_failed", slog.String("error", err.Error()))
			continue
		}
		c = nc
		s.log.Info("postgres.listener_reconnected")
		s.signal()
	}
}

// listenOn waits for notifications on c until c fails or ctx ends.
// Notifications carrying this store's id are skipped: the commit already
// signalled Wake in-process.
func (s *Store) listenOn(ctx context.Context, c *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPingInterval)
		n, err := c.WaitForNotification(wctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !pgconn.Timeout(err) || c.IsClosed() {
				return err
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = c.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
			continue
		}
		if n == nil || n.Payload == s.id {
			continue
		}
		if from, project, ok := parseHooksPayload(n.Payload); ok {
			if fn := s.hooksChanged.Load(); fn != nil && from != s.id {
				(*fn)(project)
			}
			continue
		}
		s.signal()
	}
}

// Webhook changes travel on the wake channel with a payload of their own,
// "w:" + the sending store's id + ":" + the project id ("" for any
// project), sent inside the changing transaction (it arrives on commit).
// An older longhook takes one for a wake-up from another store: harmless.
const hooksPayloadPrefix = "w:"

func hooksPayload(storeID, projectID string) string {
	return hooksPayloadPrefix + storeID + ":" + projectID
}

func parseHooksPayload(p string) (storeID, projectID string, ok bool) {
	rest, ok := strings.CutPrefix(p, hooksPayloadPrefix)
	if !ok {
		return "", "", false
	}
	storeID, projectID, ok = strings.Cut(rest, ":")
	return storeID, projectID, ok
}

// OnWebhooksChanged implements core.WebhookChangeNotifier.
func (s *Store) OnWebhooksChanged(fn func(projectID string)) {
	s.hooksChanged.Store(&fn)
}

// notifyHooksInTx tells the other processes, on commit, that projectID's
// webhooks changed.
func (s *Store) notifyHooksInTx(ctx context.Context, tx pgx.Tx, projectID string) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.notify.channel, hooksPayload(s.id, projectID))
	return err
}

// notifyHooks tells the other processes that webhooks of any project
// changed (auto-disable, a 410), after the commit that changed them. A
// failure is logged: their caches then expire on their own (1 s).
func (s *Store) notifyHooks(ctx context.Context) {
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SELECT pg_notify($1, $2)`, s.notify.channel, hooksPayload(s.id, ""))
		return err
	})
	if err != nil && ctx.Err() == nil {
		s.log.Warn("postgres.notify_failed", slog.String("error", err.Error()))
	}
}

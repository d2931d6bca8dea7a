package postgres

import (
	"github.com/jackc/pgx/v5"
)

// Settings local to one transaction. A batch (pgx.Batch) runs in one
// implicit transaction, so set_config(..., true) queued at its head holds
// for the statements after it and for its commit, and ends with it: the
// connection goes back to the pool with its session settings unchanged.
// (SET LOCAL would warn and do nothing there: an implicit transaction is
// no transaction block.)
const (
	// asyncCommitSQL lets the transaction's commit return before its WAL
	// reaches the disk. Only for writes whose loss in a PostgreSQL crash
	// leaves a state the queue already recovers from — completions and
	// releases: the delivery stays pending under its lease and is
	// attempted again when the lease runs out (at-least-once). Never for
	// publishes, which must be durable before the 2xx. WAL is written in
	// order, so the next synchronous commit (any publish) flushes these
	// too. See design.md, "PostgreSQL: asynchronous completions".
	asyncCommitSQL = `SELECT set_config('synchronous_commit', 'off', true)`

	// genericPlanSQL makes the statements after it use their generic
	// plan (planned once per connection) instead of one planned for every
	// call; only for statements whose plan reads no table, so that it
	// cannot depend on the tables' sizes (see Open and design.md,
	// "PostgreSQL plans"). planModeSQL ($1) restores the connection's mode.
	genericPlanSQL = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`
	planModeSQL    = `SELECT set_config('plan_cache_mode', $1, true)`

	// completeSettingsSQL is asyncCommitSQL and the plan settings of a
	// completion's statements in one statement: generic plans (planned once
	// per connection, not for every call) with sequential scans priced out
	// (enable_seqscan off), so that a plan made while deliveries or
	// webhooks were nearly empty still looks their rows up by key as the
	// tables grow — the reason the store plans for every call otherwise
	// (see Open). The completion's statements read those tables only
	// through their primary keys (`id = ANY ($1)`), which is the plan a
	// custom planning makes once the tables have rows; planning them for
	// every call was a tenth of PostgreSQL's CPU per delivery (design.md,
	// "PostgreSQL plans").
	completeSettingsSQL = `SELECT set_config('synchronous_commit', 'off', true),
	set_config('plan_cache_mode', 'force_generic_plan', true), set_config('enable_seqscan', 'off', true)`
)

// hookBatch lets a test's Store.batchHook queue statements at the end of
// a batch.
func (s *Store) hookBatch(b *pgx.Batch, kind string) {
	if s.batchHook != nil {
		s.batchHook(kind, b)
	}
}

// planModes queues the plan mode switches of one batch: use(true) before
// a statement whose plan reads no table, use(false) before one that does.
// Nothing is queued when the mode does not change, nor when the
// connections' mode is not the store's own (Store.genericPlans).
type planModes struct {
	b       *pgx.Batch
	s       *Store
	generic bool
}

func (p *planModes) use(generic bool) {
	if !p.s.genericPlans || generic == p.generic {
		return
	}
	p.generic = generic
	if generic {
		p.b.Queue(genericPlanSQL)
	} else {
		p.b.Queue(planModeSQL, p.s.planMode)
	}
}

// Package core is longhook's domain: projects, webhooks, events,
// deliveries and attempts; the retry policy and the outcome types that drive
// it; validation of everything a client can send; sentinel errors; and the
// Store interface that the SQLite and PostgreSQL drivers implement.
//
// The package imports only the standard library and performs no I/O, so
// every rule here is testable with a fake clock and no database.
//
// # Delivery state machine
//
//	           publish
//	              │
//	    ┌─────────▼─────────┐  claim (lease)   ┌──────────┐
//	    │ pending (due/sched)├────────────────►│ in flight│
//	    └──▲──────┬─────────┘                  └────┬─────┘
//	       │      │ webhook deleted                 │ attempt
//	retry  │      ▼                                 ▼
//	(sched)│   cancelled          2xx ──► succeeded
//	       └──────────────── retryable failure before horizon
//	                          permanent failure / horizon ──► failed
//
// A delivery whose lease expires (its engine died) is due again. Deliveries
// for a disabled webhook are created as skipped; :recover and :redeliver
// put failed or skipped deliveries back to pending.
package core

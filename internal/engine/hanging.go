package engine

// Hanging destinations. A destination that does not answer holds a worker
// slot for the whole attempt timeout; with its full cap of PerDestination
// attempts, a few hundred such destinations hold every slot and healthy
// destinations wait behind them. So:
//
//   - a destination the engine has not heard from yet (no attempt of it
//     finished since the engine started) gets one attempt at a time until
//     the first one ends (slow start): an unknown destination that hangs
//     costs one slot for one attempt timeout, not PerDestination of them;
//   - a destination whose last attempt timed out is hanging: one attempt
//     at a time, and all hanging destinations together hold at most
//     HangingWorkers of the worker slots; their deliveries wait in the
//     store (the claim skips them while those slots are taken) and take
//     turns for the slots, so every one of them still progresses;
//   - the first attempt that gets an answer (any status, or a refused
//     connection) ends both: the destination has its full cap again.
//
// Nothing is dropped or reordered past what the caps already do: a
// delivery that cannot start is left (or given back) to the store, due as
// before.

// maxHanging bounds the destinations remembered as hanging; past it the
// record starts afresh (they are then unknown: one attempt each, and the
// next timeout marks them again).
const maxHanging = 4096

// capOf is how many attempts dest may have in flight; e.mu is held.
func (e *Engine) capOf(dest string) int {
	_, known := e.latency[dest]
	return e.capFor(dest, known)
}

// capIn is capOf for a destination whose state is d (nil: none).
func (e *Engine) capIn(dest string, d *destState) int {
	if d == nil {
		return e.capOf(dest)
	}
	return e.capFor(dest, d.known)
}

// capFor is capOf, known telling whether an attempt of dest has finished
// (it has a latency record); e.mu is held.
func (e *Engine) capFor(dest string, known bool) int {
	if _, ok := e.hanging[dest]; ok {
		return 1
	}
	if !known {
		return 1 // slow start: no attempt of it has finished yet
	}
	if a := e.adaptive[dest]; a != nil && a.limit > e.cfg.PerDestination {
		return a.limit // grown (adaptive.go)
	}
	return e.cfg.PerDestination
}

// canRun reports whether a delivery to dest (whose state is d) may start
// now; e.mu is held.
func (e *Engine) canRun(dest string, d *destState) bool {
	if d.running >= e.capIn(dest, d) || e.running >= e.cfg.Workers {
		return false
	}
	_, hanging := e.hanging[dest]
	return !hanging || e.hangRunning < e.cfg.HangingWorkers
}

// run starts t, counting its slot (and its hanging slot); e.mu is held.
func (e *Engine) run(t *task, d *destState) {
	d.running++
	e.running++
	if _, ok := e.hanging[t.c.Dest]; ok {
		t.hang = true
		e.hangRunning++
		e.hangOffered = 0
	}
	e.start(t)
}

// noteOutcome records whether t's attempt hung (timed out) and frees its
// hanging slot; e.mu is held.
func (e *Engine) noteOutcome(t *task) {
	if t.timedOut {
		if _, ok := e.hanging[t.c.Dest]; !ok && len(e.hanging) >= maxHanging {
			clear(e.hanging)
		}
		if _, ok := e.hanging[t.c.Dest]; !ok {
			e.hangTurn++
			e.hanging[t.c.Dest] = e.hangTurn
		}
	} else {
		delete(e.hanging, t.c.Dest)
	}
	if t.hang {
		e.hangRunning--
		// A hanging slot is free: the destinations waiting for one queue
		// for the pump again, and the claim may take their work again.
		if len(e.hangWait) > 0 {
			e.ready = append(e.ready, e.hangWait...)
			e.hangWait = nil
		}
		if e.hangExcluded {
			e.hangExcluded = false
			select {
			case e.unblocked <- struct{}{}:
			default:
			}
		}
	}
}

// hangExclusions adds to exclude the hanging destinations the claim must
// skip: those at their cap of one, and all of them while the hanging slots
// are taken (their deliveries stay due in the store). While slots are
// free, the claim is offered the destinations that had their turn longest
// ago — a few times as many as there are free slots, at least an eighth
// of them, so a claim returns few deliveries it cannot start (those are
// given back) and a round of offers covers every hanging destination in
// at most eight claims. e.mu is held.
func (e *Engine) hangExclusions(exclude []string) []string {
	free := e.cfg.HangingWorkers - e.hangRunning
	e.hangExcluded = false
	var offer map[string]bool
	if n := max(4*free, (len(e.hanging)+7)/8); free > 0 && len(e.hanging) > n {
		offer = e.oldestHanging(n)
	}
	for k := range e.hanging {
		if e.excluded[k] {
			continue
		}
		if free > 0 && (offer == nil || offer[k]) {
			e.hangTurn++
			e.hanging[k] = e.hangTurn // offered: the next claims offer others first
			e.hangOffered++
			continue
		}
		exclude = append(exclude, k)
		e.excluded[k] = true
		e.hangExcluded = true
	}
	return exclude
}

// moreHangTurns reports whether the last claim left out hanging
// destinations that have not been offered since a hanging attempt last
// started while hanging slots are free: the claim loop then claims again
// at once instead of waiting. e.mu is held.
func (e *Engine) moreHangTurns() bool {
	return e.hangExcluded && e.hangRunning < e.cfg.HangingWorkers && e.hangOffered < len(e.hanging)
}

// oldestHanging returns the n hanging destinations not at their cap that
// had their turn longest ago; e.mu is held.
func (e *Engine) oldestHanging(n int) map[string]bool {
	type cand struct {
		key  string
		turn uint64
	}
	var best []cand // the n oldest so far, newest last
	for k, turn := range e.hanging {
		if e.excluded[k] {
			continue
		}
		if len(best) == n && turn >= best[n-1].turn {
			continue
		}
		i := len(best)
		if i == n {
			i--
		} else {
			best = append(best, cand{})
		}
		for i > 0 && turn < best[i-1].turn {
			best[i] = best[i-1]
			i--
		}
		best[i] = cand{k, turn}
	}
	out := make(map[string]bool, len(best))
	for _, c := range best {
		out[c.key] = true
	}
	return out
}

func (e *Engine) hangTurnsLeft() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.moreHangTurns()
}

package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// ResealSecrets implements core.Resealer in one transaction. The rows are
// read FOR UPDATE: a webhook update or delete on another instance waits
// for the commit instead of writing a secret this transaction then
// overwrites with its old value. Secrets added meanwhile are sealed by
// their instance's primary key and are not seen.
func (s *Store) ResealSecrets(ctx context.Context, fn func(values []core.SealedValue) ([][]byte, error)) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		vals, keys, err := sealedValues(ctx, tx)
		if err != nil {
			return err
		}
		repl, err := core.Reseal(fn, vals)
		if err != nil {
			return err
		}
		var hooks, ids, kids []string
		var secs, ks [][]byte
		for i, v := range vals {
			switch {
			case repl[i] == nil:
			case v.Kind == core.SealedWebhookSecret:
				hooks, ids, secs = append(hooks, keys[i][0]), append(ids, keys[i][1]), append(secs, repl[i])
			default:
				kids, ks = append(kids, keys[i][1]), append(ks, repl[i])
			}
		}
		if len(ids) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE webhook_secrets w SET sealed = v.sealed
				FROM unnest($1::text[], $2::text[], $3::bytea[]) AS v(webhook_id, id, sealed)
				WHERE w.webhook_id = v.webhook_id AND w.id = v.id`, hooks, ids, secs); err != nil {
				return err
			}
		}
		if len(kids) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE signing_keys k SET sealed = v.sealed
				FROM unnest($1::text[], $2::bytea[]) AS v(id, sealed) WHERE k.id = v.id`, kids, ks); err != nil {
				return err
			}
		}
		return nil
	})
	if fe := core.CallbackError(err); fe != nil {
		return fe
	}
	return wrap("reseal secrets", err)
}

// sealedValues reads every sealed value in tx, locking its row, and the
// key of the row (webhook id, secret id; "", key id).
func sealedValues(ctx context.Context, tx pgx.Tx) ([]core.SealedValue, [][2]string, error) {
	var vals []core.SealedValue
	var keys [][2]string
	for _, q := range []struct {
		kind core.SealedKind
		sql  string
	}{
		{core.SealedWebhookSecret, `SELECT webhook_id, id, sealed FROM webhook_secrets ORDER BY webhook_id, id FOR UPDATE`},
		{core.SealedSigningKey, `SELECT '', id, sealed FROM signing_keys ORDER BY id FOR UPDATE`},
	} {
		rows, err := tx.Query(ctx, q.sql)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			v := core.SealedValue{Kind: q.kind}
			var k [2]string
			if err := rows.Scan(&k[0], &k[1], &v.Sealed); err != nil {
				rows.Close()
				return nil, nil, err
			}
			v.ID = k[1]
			if k[0] != "" {
				v.ID = k[0] + "/" + k[1]
			}
			vals, keys = append(vals, v), append(keys, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	return vals, keys, nil
}

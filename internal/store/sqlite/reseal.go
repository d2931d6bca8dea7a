package sqlite

import (
	"context"
	"database/sql"

	"github.com/longhook/longhook/internal/core"
)

// ResealSecrets implements core.Resealer in one write transaction.
func (s *Store) ResealSecrets(ctx context.Context, fn func(values []core.SealedValue) ([][]byte, error)) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		vals, keys, err := sealedValues(ctx, tx)
		if err != nil {
			return err
		}
		repl, err := core.Reseal(fn, vals)
		if err != nil {
			return err
		}
		for i, v := range vals {
			if repl[i] == nil {
				continue
			}
			var err error
			if v.Kind == core.SealedWebhookSecret {
				_, err = tx.ExecContext(ctx, `UPDATE webhook_secrets SET sealed = ? WHERE webhook_id = ? AND id = ?`, repl[i], keys[i][0], keys[i][1])
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE signing_keys SET sealed = ? WHERE id = ?`, repl[i], keys[i][1])
			}
			if err != nil {
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

// sealedValues reads every sealed value in tx, and the key of its row
// (webhook id, secret id; "", key id).
func sealedValues(ctx context.Context, tx *sql.Tx) ([]core.SealedValue, [][2]string, error) {
	var vals []core.SealedValue
	var keys [][2]string
	for _, q := range []struct {
		kind core.SealedKind
		sql  string
	}{
		{core.SealedWebhookSecret, `SELECT webhook_id, id, sealed FROM webhook_secrets ORDER BY webhook_id, id`},
		{core.SealedSigningKey, `SELECT '', id, sealed FROM signing_keys ORDER BY id`},
	} {
		rows, err := tx.QueryContext(ctx, q.sql)
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
		if err := rows.Close(); err != nil {
			return nil, nil, err
		}
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	return vals, keys, nil
}

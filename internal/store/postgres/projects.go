package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/longhook/longhook/internal/core"
)

// exec runs one statement outside an explicit transaction.
func (s *Store) exec(ctx context.Context, idempotent bool, sql string, args ...any) (int64, error) {
	var n int64
	err := s.run(ctx, idempotent, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// query runs a read and collects its rows with scan.
// Only idempotent statements (reads) may pass idempotent (see run).
func query[T any](ctx context.Context, s *Store, idempotent bool, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := s.run(ctx, idempotent, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		out = nil
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}

// CreateProject implements core.ProjectStore.
func (s *Store) CreateProject(ctx context.Context, p core.Project) error {
	_, err := s.exec(ctx, false, `INSERT INTO projects (id, name, create_time) VALUES ($1, $2, $3)`,
		p.ID, p.Name, p.CreateTime)
	return wrap("create project", err)
}

func scanProject(r pgx.Row) (core.Project, error) {
	var p core.Project
	err := r.Scan(&p.ID, &p.Name, &p.CreateTime)
	return p, err
}

// GetProject implements core.ProjectStore.
func (s *Store) GetProject(ctx context.Context, id string) (core.Project, error) {
	ps, err := query(ctx, s, true, scanProject, `SELECT id, name, create_time FROM projects WHERE id = $1`, id)
	if err == nil && len(ps) == 0 {
		err = core.ErrNotFound
	}
	if err != nil {
		return core.Project{}, wrap("get project", err)
	}
	return ps[0], nil
}

// ListProjects implements core.ProjectStore: every project, by id.
func (s *Store) ListProjects(ctx context.Context) ([]core.Project, error) {
	ps, err := query(ctx, s, true, scanProject, `SELECT id, name, create_time FROM projects ORDER BY id`)
	return ps, wrap("list projects", err)
}

const apiKeyCols = `id, project_id, name, digest, hint, admin, create_time, revoke_time`

func scanAPIKey(r pgx.Row) (core.APIKey, error) {
	var k core.APIKey
	err := r.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Digest, &k.Hint, &k.Admin, &k.CreateTime, &k.RevokeTime)
	return k, err
}

// CreateAPIKey implements core.ProjectStore. A duplicate id or digest is
// core.ErrAlreadyExists.
func (s *Store) CreateAPIKey(ctx context.Context, k core.APIKey) error {
	_, err := s.exec(ctx, false,
		`INSERT INTO api_keys (`+apiKeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.ProjectID, k.Name, orEmpty(k.Digest), k.Hint, k.Admin, k.CreateTime, k.RevokeTime)
	return wrap("create api key", err)
}

// ListAPIKeys implements core.ProjectStore, ordered by id.
func (s *Store) ListAPIKeys(ctx context.Context, projectID string) ([]core.APIKey, error) {
	q := `SELECT ` + apiKeyCols + ` FROM api_keys`
	var args []any
	if projectID != "" {
		q += ` WHERE project_id = $1`
		args = append(args, projectID)
	}
	ks, err := query(ctx, s, true, scanAPIKey, q+` ORDER BY id`, args...)
	return ks, wrap("list api keys", err)
}

// RevokeAPIKey implements core.ProjectStore. Revoking a revoked key keeps
// its first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, true,
		`UPDATE api_keys SET revoke_time = CASE WHEN revoke_time = `+zeroTime+` THEN $1 ELSE revoke_time END
		 WHERE id = $2`, at, id)
	if err == nil && n == 0 {
		err = core.ErrNotFound
	}
	return wrap("revoke api key", err)
}

// LookupAPIKey implements core.ProjectStore.
func (s *Store) LookupAPIKey(ctx context.Context, digest []byte) (core.APIKey, error) {
	ks, err := query(ctx, s, true, scanAPIKey,
		`SELECT `+apiKeyCols+` FROM api_keys WHERE digest = $1 AND revoke_time = `+zeroTime, orEmpty(digest))
	if err == nil && len(ks) == 0 {
		err = core.ErrNotFound
	}
	if err != nil {
		return core.APIKey{}, wrap("lookup api key", err)
	}
	return ks[0], nil
}

// SigningKeys implements core.KeyStore.
func (s *Store) SigningKeys(ctx context.Context) ([]core.SigningKey, error) {
	ks, err := query(ctx, s, true, func(r pgx.Row) (core.SigningKey, error) {
		var k core.SigningKey
		err := r.Scan(&k.ID, &k.Algorithm, &k.Sealed, &k.PublicJWK, &k.CreateTime, &k.RetireTime, &k.ExpireTime)
		return k, err
	}, `SELECT id, algorithm, sealed, public_jwk, create_time, retire_time, expire_time
		FROM signing_keys ORDER BY create_time DESC, id DESC`)
	return ks, wrap("signing keys", err)
}

// AddSigningKey implements core.KeyStore.
func (s *Store) AddSigningKey(ctx context.Context, k core.SigningKey, retiredExpire time.Time) error {
	err := s.inTx(ctx, false, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`UPDATE signing_keys SET retire_time = $1, expire_time = $2 WHERE retire_time = `+zeroTime,
			k.CreateTime, retiredExpire); err != nil {
			return err
		}
		_, err := tx.Exec(ctx,
			`INSERT INTO signing_keys (id, algorithm, sealed, public_jwk, create_time, retire_time, expire_time)
			 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			k.ID, k.Algorithm, orEmpty(k.Sealed), orEmpty(k.PublicJWK), k.CreateTime, k.RetireTime, k.ExpireTime)
		return err
	})
	return wrap("add signing key", err)
}

// DeleteExpiredSigningKeys implements core.KeyStore. The current key is
// never removed, whatever its ExpireTime.
func (s *Store) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error) {
	n, err := s.exec(ctx, false,
		`DELETE FROM signing_keys WHERE retire_time <> `+zeroTime+` AND expire_time <> `+zeroTime+`
		 AND expire_time <= $1`, now)
	if err != nil {
		return 0, wrap("delete expired signing keys", err)
	}
	return int(n), nil
}

// AcquireLease implements core.LeaseStore with one upsert. PostgreSQL's
// INSERT ... ON CONFLICT DO UPDATE is atomic: concurrent callers
// serialise on the row, and each re-checks the WHERE against the row as
// the previous one left it, so exactly one owner wins a free or expired
// lease. The lease is held until expire_time, exclusive (a lease renewed
// at t with ttl d can be taken over at t+d). Times come from the callers'
// clocks, which must roughly agree.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var got bool
	err := s.run(ctx, true, func(c *pgx.Conn) error {
		var who string
		err := c.QueryRow(ctx,
			`INSERT INTO leases (name, owner, expire_time)
			 VALUES ($1, $2, coalesce($4::timestamptz, now()) + $3::int8 * interval '1 microsecond')
			 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expire_time = excluded.expire_time
			 WHERE leases.owner = excluded.owner OR leases.expire_time <= coalesce($4::timestamptz, now())
			 RETURNING owner`, name, owner, micros(ttl), s.leaseNow(now)).Scan(&who)
		if errors.Is(err, pgx.ErrNoRows) {
			got = false
			return nil
		}
		got = err == nil && who == owner
		return err
	})
	if err != nil {
		return false, wrap("acquire lease", err)
	}
	return got, nil
}

// ReleaseLease implements core.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	_, err := s.exec(ctx, true, `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner)
	return wrap("release lease", err)
}

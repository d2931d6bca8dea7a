package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// CreateProject implements core.ProjectStore.
func (s *Store) CreateProject(ctx context.Context, p core.Project) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO projects (id, name, create_time) VALUES (?, ?, ?)`,
		p.ID, p.Name, micros(p.CreateTime))
	return wrap("create project", err)
}

// GetProject implements core.ProjectStore.
func (s *Store) GetProject(ctx context.Context, id string) (core.Project, error) {
	var p core.Project
	var ct int64
	err := s.r.QueryRowContext(ctx,
		`SELECT id, name, create_time FROM projects WHERE id = ?`, id).Scan(&p.ID, &p.Name, &ct)
	if err != nil {
		return core.Project{}, wrap("get project", err)
	}
	p.CreateTime = fromMicros(ct)
	return p, nil
}

// ListProjects implements core.ProjectStore: every project, by id.
func (s *Store) ListProjects(ctx context.Context) ([]core.Project, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, name, create_time FROM projects ORDER BY id`)
	if err != nil {
		return nil, wrap("list projects", err)
	}
	defer rows.Close()
	var out []core.Project
	for rows.Next() {
		var p core.Project
		var ct int64
		if err := rows.Scan(&p.ID, &p.Name, &ct); err != nil {
			return nil, wrap("list projects", err)
		}
		p.CreateTime = fromMicros(ct)
		out = append(out, p)
	}
	return out, wrap("list projects", rows.Err())
}

// CreateAPIKey implements core.ProjectStore. A duplicate id or digest is
// core.ErrAlreadyExists.
func (s *Store) CreateAPIKey(ctx context.Context, k core.APIKey) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO api_keys (id, project_id, name, digest, hint, admin, create_time, revoke_time)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.ProjectID, k.Name, k.Digest, k.Hint, boolInt(k.Admin),
		micros(k.CreateTime), micros(k.RevokeTime))
	return wrap("create api key", err)
}

const apiKeyCols = `id, project_id, name, digest, hint, admin, create_time, revoke_time`

func scanAPIKey(sc interface{ Scan(...any) error }) (core.APIKey, error) {
	var k core.APIKey
	var admin, ct, rt int64
	if err := sc.Scan(&k.ID, &k.ProjectID, &k.Name, &k.Digest, &k.Hint, &admin, &ct, &rt); err != nil {
		return core.APIKey{}, err
	}
	k.Admin = admin != 0
	k.CreateTime = fromMicros(ct)
	k.RevokeTime = fromMicros(rt)
	return k, nil
}

// ListAPIKeys implements core.ProjectStore, ordered by id.
func (s *Store) ListAPIKeys(ctx context.Context, projectID string) ([]core.APIKey, error) {
	q := `SELECT ` + apiKeyCols + ` FROM api_keys`
	var args []any
	if projectID != "" {
		q += ` WHERE project_id = ?`
		args = append(args, projectID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, wrap("list api keys", err)
	}
	defer rows.Close()
	var out []core.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, wrap("list api keys", err)
		}
		out = append(out, k)
	}
	return out, wrap("list api keys", rows.Err())
}

// RevokeAPIKey implements core.ProjectStore. Revoking a revoked key keeps
// its first revocation time.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.w.ExecContext(ctx,
		`UPDATE api_keys SET revoke_time = CASE WHEN revoke_time = 0 THEN ? ELSE revoke_time END
		 WHERE id = ?`, micros(at), id)
	if err == nil {
		err = rowsAffected(res)
	}
	return wrap("revoke api key", err)
}

// LookupAPIKey implements core.ProjectStore.
func (s *Store) LookupAPIKey(ctx context.Context, digest []byte) (core.APIKey, error) {
	k, err := scanAPIKey(s.r.QueryRowContext(ctx,
		`SELECT `+apiKeyCols+` FROM api_keys WHERE digest = ? AND revoke_time = 0`, digest))
	if err != nil {
		return core.APIKey{}, wrap("lookup api key", err)
	}
	return k, nil
}

// SigningKeys implements core.KeyStore.
func (s *Store) SigningKeys(ctx context.Context) ([]core.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT id, algorithm, sealed, public_jwk, create_time, retire_time, expire_time
		 FROM signing_keys ORDER BY create_time DESC, id DESC`)
	if err != nil {
		return nil, wrap("signing keys", err)
	}
	defer rows.Close()
	var out []core.SigningKey
	for rows.Next() {
		var k core.SigningKey
		var ct, rt, et int64
		if err := rows.Scan(&k.ID, &k.Algorithm, &k.Sealed, &k.PublicJWK, &ct, &rt, &et); err != nil {
			return nil, wrap("signing keys", err)
		}
		k.CreateTime, k.RetireTime, k.ExpireTime = fromMicros(ct), fromMicros(rt), fromMicros(et)
		out = append(out, k)
	}
	return out, wrap("signing keys", rows.Err())
}

// AddSigningKey implements core.KeyStore.
func (s *Store) AddSigningKey(ctx context.Context, k core.SigningKey, retiredExpire time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE signing_keys SET retire_time = ?, expire_time = ? WHERE retire_time = 0`,
			micros(k.CreateTime), micros(retiredExpire)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO signing_keys (id, algorithm, sealed, public_jwk, create_time, retire_time, expire_time)
			 VALUES (?, ?, ?, ?, ?, ?, ?)`,
			k.ID, k.Algorithm, k.Sealed, k.PublicJWK, micros(k.CreateTime),
			micros(k.RetireTime), micros(k.ExpireTime))
		return err
	})
	return wrap("add signing key", err)
}

// DeleteExpiredSigningKeys implements core.KeyStore. The current key is
// never removed, whatever its ExpireTime.
func (s *Store) DeleteExpiredSigningKeys(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx,
		`DELETE FROM signing_keys WHERE retire_time != 0 AND expire_time != 0 AND expire_time <= ?`,
		micros(now))
	if err != nil {
		return 0, wrap("delete expired signing keys", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("delete expired signing keys", err)
}

// AcquireLease implements core.LeaseStore with a single upsert; the
// IMMEDIATE write lock makes it atomic across processes sharing the file.
func (s *Store) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	var got string
	err := s.w.QueryRowContext(ctx,
		`INSERT INTO leases (name, owner, expire_time) VALUES (?1, ?2, ?3)
		 ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expire_time = excluded.expire_time
		 WHERE leases.owner = excluded.owner OR leases.expire_time <= ?4
		 RETURNING owner`,
		name, owner, micros(now.Add(ttl)), micros(now)).Scan(&got)
	if err == sql.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, wrap("acquire lease", err)
	}
	return got == owner, nil
}

// ReleaseLease implements core.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
	return wrap("release lease", err)
}

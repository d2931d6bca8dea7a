package storetest

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

func testProjects(t *testing.T, b *bundle) {
	got, err := b.s.GetProject(b.ctx, b.p.ID)
	if err != nil {
		t.Fatalf("GetProject: %v", err)
	}
	wantEqual(t, "GetProject", got, b.p)

	_, err = b.s.GetProject(b.ctx, core.NewID())
	wantNotFound(t, "GetProject(missing)", err)

	if err := b.s.CreateProject(b.ctx, b.p); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateProject(duplicate) = %v, want ErrAlreadyExists", err)
	}

	p2 := b.project()
	ps, err := b.s.ListProjects(b.ctx)
	if err != nil {
		t.Fatalf("ListProjects: %v", err)
	}
	wantEqual(t, "ListProjects ids", ids(ps, func(p core.Project) string { return p.ID }),
		map[string]bool{b.p.ID: true, p2.ID: true})
}

func testAPIKeys(t *testing.T, b *bundle) {
	p2 := b.project()
	k1, raw1 := NewAPIKey(b.p.ID)
	k2, _ := NewAPIKey(b.p.ID)
	k2.Admin = true
	k3, _ := NewAPIKey(p2.ID)
	for _, k := range []core.APIKey{k1, k2, k3} {
		if err := b.s.CreateAPIKey(b.ctx, k); err != nil {
			t.Fatalf("CreateAPIKey: %v", err)
		}
	}
	if err := b.s.CreateAPIKey(b.ctx, k1); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("CreateAPIKey(duplicate) = %v, want ErrAlreadyExists", err)
	}

	d := sha256.Sum256([]byte(raw1))
	got, err := b.s.LookupAPIKey(b.ctx, d[:])
	if err != nil {
		t.Fatalf("LookupAPIKey: %v", err)
	}
	wantEqual(t, "LookupAPIKey", got, k1)

	_, err = b.s.LookupAPIKey(b.ctx, make([]byte, 32))
	wantNotFound(t, "LookupAPIKey(unknown digest)", err)

	mine, err := b.s.ListAPIKeys(b.ctx, b.p.ID)
	if err != nil {
		t.Fatalf("ListAPIKeys: %v", err)
	}
	keyIDs := func(ks []core.APIKey) map[string]bool { return ids(ks, func(k core.APIKey) string { return k.ID }) }
	wantEqual(t, "ListAPIKeys(project)", keyIDs(mine), map[string]bool{k1.ID: true, k2.ID: true})
	all, err := b.s.ListAPIKeys(b.ctx, "")
	if err != nil {
		t.Fatalf("ListAPIKeys(all): %v", err)
	}
	wantEqual(t, "ListAPIKeys(all)", keyIDs(all), map[string]bool{k1.ID: true, k2.ID: true, k3.ID: true})
	for _, k := range mine {
		if k.ID == k2.ID && !k.Admin {
			t.Errorf("admin flag lost")
		}
	}

	revokeAt := T0.Add(time.Hour)
	if err := b.s.RevokeAPIKey(b.ctx, k1.ID, revokeAt); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	_, err = b.s.LookupAPIKey(b.ctx, d[:])
	wantNotFound(t, "LookupAPIKey(revoked)", err)
	wantNotFound(t, "RevokeAPIKey(missing)", b.s.RevokeAPIKey(b.ctx, core.NewID(), revokeAt))
	mine, _ = b.s.ListAPIKeys(b.ctx, b.p.ID)
	for _, k := range mine {
		if k.ID == k1.ID {
			wantTime(t, "RevokeTime", k.RevokeTime, revokeAt)
		}
	}
}

func testSigningKeys(t *testing.T, b *bundle) {
	keys, err := b.s.SigningKeys(b.ctx)
	if err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys(empty) = %v, %v", keys, err)
	}
	mk := func(at time.Time) core.SigningKey {
		return core.SigningKey{ID: core.NewID(), Algorithm: "RS256", Sealed: []byte{1, 2, 3},
			PublicJWK: []byte(`{"kty":"RSA"}`), CreateTime: at}
	}
	k1, k2, k3 := mk(T0), mk(T0.Add(time.Hour)), mk(T0.Add(2*time.Hour))
	if err := b.s.AddSigningKey(b.ctx, k1, time.Time{}); err != nil {
		t.Fatalf("AddSigningKey: %v", err)
	}
	if err := b.s.AddSigningKey(b.ctx, k2, k2.CreateTime.Add(24*time.Hour)); err != nil {
		t.Fatalf("AddSigningKey: %v", err)
	}
	keys, err = b.s.SigningKeys(b.ctx)
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	k1.RetireTime, k1.ExpireTime = k2.CreateTime, k2.CreateTime.Add(24*time.Hour)
	wantEqual(t, "SigningKeys", keys, []core.SigningKey{k2, k1})

	if err := b.s.AddSigningKey(b.ctx, k3, k3.CreateTime.Add(48*time.Hour)); err != nil {
		t.Fatalf("AddSigningKey: %v", err)
	}
	// k1 keeps its expiry; k2 is retired now.
	n, err := b.s.DeleteExpiredSigningKeys(b.ctx, k1.ExpireTime)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSigningKeys = %d, %v; want 1", n, err)
	}
	keys, _ = b.s.SigningKeys(b.ctx)
	k2.RetireTime, k2.ExpireTime = k3.CreateTime, k3.CreateTime.Add(48*time.Hour)
	wantEqual(t, "SigningKeys after delete", keys, []core.SigningKey{k3, k2})
	// The current key is never deleted.
	n, err = b.s.DeleteExpiredSigningKeys(b.ctx, T0.Add(1000*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredSigningKeys(late) = %d, %v; want 1", n, err)
	}
	keys, _ = b.s.SigningKeys(b.ctx)
	wantEqual(t, "SigningKeys keeps current", keys, []core.SigningKey{k3})
}

func testLeases(t *testing.T, b *bundle) {
	acquire := func(owner string, now time.Time, want bool) {
		t.Helper()
		got, err := b.s.AcquireLease(b.ctx, "maintenance", owner, now, time.Minute)
		if err != nil {
			t.Fatalf("AcquireLease(%s): %v", owner, err)
		}
		if got != want {
			t.Errorf("AcquireLease(%s, %v) = %v, want %v", owner, now.Sub(T0), got, want)
		}
	}
	acquire("a", T0, true)
	acquire("b", T0.Add(time.Second), false)
	acquire("a", T0.Add(50*time.Second), true) // renew: now held until T0+110s
	acquire("b", T0.Add(100*time.Second), false)
	acquire("b", T0.Add(110*time.Second), true) // expired: taken over
	acquire("a", T0.Add(111*time.Second), false)

	// Other names are independent.
	if ok, err := b.s.AcquireLease(b.ctx, "other", "a", T0.Add(111*time.Second), time.Minute); err != nil || !ok {
		t.Errorf("AcquireLease(other) = %v, %v", ok, err)
	}

	// Only the holder can release.
	if err := b.s.ReleaseLease(b.ctx, "maintenance", "a"); err != nil {
		t.Fatalf("ReleaseLease(non-holder): %v", err)
	}
	acquire("a", T0.Add(112*time.Second), false)
	if err := b.s.ReleaseLease(b.ctx, "maintenance", "b"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	acquire("a", T0.Add(113*time.Second), true)
}

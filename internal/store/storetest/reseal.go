package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/core"
)

// RunReseal checks core.Resealer (master key rotation) on a store from
// newStore, which must implement it: the callback sees every sealed
// value, webhook secrets then signing keys, with ids that name them; what
// it returns replaces them in one transaction and nothing else changes; a
// callback error, or a reply of the wrong length, changes nothing.
func RunReseal(t *testing.T, newStore func(t *testing.T) core.Store) {
	t.Parallel()
	b := setup(t, newStore(t))
	rs, ok := b.s.(core.Resealer)
	if !ok {
		t.Fatalf("%T does not implement core.Resealer", b.s)
	}
	calls := 0
	if err := rs.ResealSecrets(b.ctx, func(v []core.SealedValue) ([][]byte, error) {
		calls++
		if len(v) != 0 {
			t.Errorf("empty store: %d values", len(v))
		}
		return nil, nil
	}); err != nil || calls != 1 {
		t.Fatalf("empty store: %v, %d calls", err, calls)
	}

	w1, w2 := b.webhook(""), NewWebhook(b.project().ID)
	w2.Secrets = append(w2.Secrets, NewSecret(T0.Add(time.Minute)))
	w2.Secrets[1].ExpireTime = T0.Add(time.Hour)
	if err := b.s.CreateWebhook(b.ctx, w2); err != nil {
		t.Fatal(err)
	}
	k1 := core.SigningKey{ID: core.NewID(), Algorithm: "RS256", Sealed: []byte("sealed k1"), PublicJWK: []byte(`{"kty":"RSA"}`), CreateTime: T0}
	k2 := core.SigningKey{ID: core.NewID(), Algorithm: "ES256", Sealed: []byte("sealed k2"), PublicJWK: []byte(`{"kty":"EC"}`), CreateTime: T0.Add(time.Hour)}
	for _, k := range []core.SigningKey{k1, k2} {
		if err := b.s.AddSigningKey(b.ctx, k, k.CreateTime.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotSealed(b, w1, w2)

	// What every value should look like to the callback.
	want := map[string][]byte{}
	for _, w := range []*core.Webhook{w1, w2} {
		for _, s := range w.Secrets {
			want[string(core.SealedWebhookSecret)+" "+w.ID+"/"+s.ID] = s.Sealed
		}
	}
	want[string(core.SealedSigningKey)+" "+k1.ID] = k1.Sealed
	want[string(core.SealedSigningKey)+" "+k2.ID] = k2.Sealed

	// A failing callback, and one answering the wrong number of values,
	// change nothing.
	boom := errors.New("boom")
	err := rs.ResealSecrets(b.ctx, func(v []core.SealedValue) ([][]byte, error) {
		return slices.Repeat([][]byte{[]byte("x")}, len(v)), boom
	})
	if err != boom {
		t.Fatalf("callback error: got %v, want it returned as it is", err)
	}
	if err := rs.ResealSecrets(b.ctx, func(v []core.SealedValue) ([][]byte, error) {
		return [][]byte{[]byte("x")}, nil
	}); err == nil {
		t.Fatal("a reply of the wrong length was accepted")
	}
	wantEqual(t, "after refused reseals", snapshotSealed(b, w1, w2), before)

	// Re-seal every value but the first signing key.
	var kinds []core.SealedKind
	err = rs.ResealSecrets(b.ctx, func(vals []core.SealedValue) ([][]byte, error) {
		out := make([][]byte, len(vals))
		for i, v := range vals {
			kinds = append(kinds, v.Kind)
			key := string(v.Kind) + " " + v.ID
			if w, ok := want[key]; !ok || !bytes.Equal(w, v.Sealed) {
				t.Errorf("callback got %s = %q; want %q (known: %v)", key, v.Sealed, w, ok)
			}
			delete(want, key)
			if v.ID != k1.ID {
				out[i] = append([]byte("new "), v.Sealed...)
			}
		}
		return out, nil
	})
	if err != nil {
		t.Fatalf("ResealSecrets: %v", err)
	}
	if len(want) != 0 {
		t.Errorf("the callback did not see %v", want)
	}
	if !slices.Equal(kinds, []core.SealedKind{core.SealedWebhookSecret, core.SealedWebhookSecret, core.SealedWebhookSecret, core.SealedSigningKey, core.SealedSigningKey}) {
		t.Errorf("kinds in order %v; want the webhook secrets, then the signing keys", kinds)
	}
	exp := before
	for k, v := range exp {
		if k != "key "+k1.ID {
			exp[k] = append([]byte("new "), v...)
		}
	}
	wantEqual(t, "after reseal", snapshotSealed(b, w1, w2), exp)

	// Everything else about the webhooks and keys is as it was.
	for _, w := range []*core.Webhook{w1, w2} {
		got, err := b.s.GetWebhook(b.ctx, w.ProjectID, w.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got.Secrets {
			got.Secrets[i].Sealed = nil
		}
		slices.SortFunc(got.Secrets, func(a, c core.SigningSecret) int { return a.CreateTime.Compare(c.CreateTime) })
		var ws []core.SigningSecret
		for _, s := range w.Secrets {
			s.Sealed = nil
			ws = append(ws, s)
		}
		wantEqual(t, "secrets of "+w.ID, got.Secrets, ws)
	}
	keys, err := b.s.SigningKeys(b.ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != k2.ID || keys[0].Algorithm != "ES256" || !bytes.Equal(keys[1].PublicJWK, k1.PublicJWK) || keys[1].RetireTime.IsZero() {
		t.Errorf("signing keys after reseal: %+v, %v", keys, err)
	}
}

// snapshotSealed is every sealed value of the webhooks and the signing
// keys, by "secret WEBHOOK/ID" and "key ID".
func snapshotSealed(b *bundle, hooks ...*core.Webhook) map[string][]byte {
	b.t.Helper()
	m := map[string][]byte{}
	for _, w := range hooks {
		got, err := b.s.GetWebhook(b.ctx, w.ProjectID, w.ID)
		if err != nil {
			b.t.Fatal(err)
		}
		for _, s := range got.Secrets {
			m["secret "+w.ID+"/"+s.ID] = s.Sealed
		}
	}
	keys, err := b.s.SigningKeys(b.ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, k := range keys {
		m["key "+k.ID] = k.Sealed
	}
	return m
}

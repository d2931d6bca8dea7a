package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/longhook/longhook/internal/api"
	"github.com/longhook/longhook/internal/core"
)

var (
	idRE     = regexp.MustCompile(`^[a-z0-9]{36}$`)
	secretRE = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)
)

func TestCreateWebhook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	before := time.Now().UTC().Truncate(time.Second)
	r := f.call("POST", "/v1/webhooks", map[string]any{
		"name": "nightly", "uri": "https://example.com/hook",
		"subscribed_events": []string{"batch.succeeded", "batch.failed", "batch.succeeded"},
	}).must(t, http.StatusOK)

	if !idRE.MatchString(r.str("id")) {
		t.Errorf("id %q is not 36 chars of [a-z0-9]", r.str("id"))
	}
	if r.str("name") != "nightly" || r.str("uri") != "https://example.com/hook" || r.str("state") != "enabled" {
		t.Errorf("unexpected resource: %s", r.raw)
	}
	if got := r.body["subscribed_events"]; fmt.Sprint(got) != "[batch.succeeded batch.failed]" {
		t.Errorf("subscribed_events = %v, want repeats dropped", got)
	}
	secret := r.str("new_signing_secret")
	if !secretRE.MatchString(secret) {
		t.Fatalf("new_signing_secret %q is not whsec_ + padded base64", secret)
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_")); err != nil || len(key) != 32 {
		t.Errorf("secret key: %d bytes, %v; want 32", len(key), err)
	}
	secrets := r.body["signing_secrets"].([]any)
	if len(secrets) != 1 {
		t.Fatalf("signing_secrets = %v, want one", secrets)
	}
	cur := secrets[0].(map[string]any)
	if cur["truncated_secret"] != "whsec_..."+secret[len(secret)-4:] {
		t.Errorf("truncated_secret = %v", cur["truncated_secret"])
	}
	if _, ok := cur["expire_time"]; ok {
		t.Errorf("current secret has expire_time: %v", cur)
	}
	for _, field := range []string{"create_time", "update_time"} {
		ts, err := time.Parse(time.RFC3339, r.str(field))
		if err != nil || ts.Before(before) || ts.After(time.Now().Add(time.Second)) || !strings.HasSuffix(r.str(field), "Z") {
			t.Errorf("%s = %q (%v), want RFC 3339 UTC now", field, r.str(field), err)
		}
	}

	// get and list never show the full secret.
	g := f.call("GET", "/v1/webhooks/"+r.str("id"), nil).must(t, http.StatusOK)
	if _, ok := g.body["new_signing_secret"]; ok || strings.Contains(string(g.raw), secret) {
		t.Errorf("get shows the secret: %s", g.raw)
	}
	for _, field := range []string{"id", "name", "uri", "state", "create_time", "update_time"} {
		if g.str(field) != r.str(field) {
			t.Errorf("get %s = %q, create said %q", field, g.str(field), r.str(field))
		}
	}
	l := f.call("GET", "/v1alpha/webhooks", nil).must(t, http.StatusOK)
	if strings.Contains(string(l.raw), secret) || len(l.body["webhooks"].([]any)) != 1 {
		t.Errorf("list: %s", l.raw)
	}
}

// A webhook without a name has no name member, on create, get, list and
// update: Webhook.name is optional and the API speaks proto3 JSON, which
// leaves out a field holding its default. "name": "" made the Go SDK's
// Webhook.Name a non-nil pointer to "" and Python's name "" instead of
// None, as if the user had named it so.
func TestWebhookWithoutNameHasNoName(t *testing.T) {
	t.Parallel()
	f := setup(t)
	noName := func(what string, m map[string]any) {
		t.Helper()
		if v, ok := m["name"]; ok {
			t.Errorf("%s: name = %q, want no name member", what, v)
		}
	}
	r := f.call("POST", "/v1/webhooks", map[string]any{
		"uri": "https://example.com/hook", "subscribed_events": []string{"batch.succeeded"},
	}).must(t, http.StatusOK)
	noName("create", r.body)
	id := r.str("id")
	noName("get", f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK).body)
	l := f.call("GET", "/v1/webhooks", nil).must(t, http.StatusOK)
	noName("list", l.body["webhooks"].([]any)[0].(map[string]any))
	if u := f.call("PATCH", "/v1/webhooks/"+id, map[string]any{"name": "n"}).must(t, http.StatusOK); u.str("name") != "n" {
		t.Fatalf("rename: %s", u.raw)
	}
	noName("update to \"\"", f.call("PATCH", "/v1/webhooks/"+id, map[string]any{"name": ""}).must(t, http.StatusOK).body)
}

func TestWebhookBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("orig")
	id := created.str("id")
	snapshot := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK).raw

	huge := strings.Repeat("x", 1<<20+10)
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"relative uri", "POST", "/v1/webhooks", `{"uri":"/hook","subscribed_events":["batch.succeeded"]}`, "uri"},
		{"http uri", "POST", "/v1/webhooks", `{"uri":"http://example.com/hook","subscribed_events":["batch.succeeded"]}`, "uri"},
		{"loopback uri", "POST", "/v1/webhooks", `{"uri":"https://127.0.0.1/hook","subscribed_events":["batch.succeeded"]}`, "uri"},
		{"port out of range", "POST", "/v1/webhooks", `{"uri":"https://example.com:99999/hook","subscribed_events":["batch.succeeded"]}`, "uri has port 99999"},
		{"port zero", "POST", "/v1/webhooks", `{"uri":"https://example.com:0/hook","subscribed_events":["batch.succeeded"]}`, "uri has port 0"},
		{"patch port out of range", "PATCH", "/v1/webhooks/" + id, `{"uri":"https://example.com:65536/hook"}`, "uri has port 65536"},
		{"missing uri", "POST", "/v1/webhooks", `{"subscribed_events":["batch.succeeded"]}`, "uri"},
		{"uri with a trailing space", "POST", "/v1/webhooks", `{"uri":"https://example.com/h ","subscribed_events":["batch.succeeded"]}`, "uri must not contain spaces"},
		{"uri with a space in the query", "POST", "/v1/webhooks", `{"uri":"https://example.com/h?a=b c","subscribed_events":["batch.succeeded"]}`, "uri must not contain spaces"},
		{"uri with an empty host label", "POST", "/v1/webhooks", `{"uri":"https://example..com/h","subscribed_events":["batch.succeeded"]}`, `uri host "example..com" has an empty label`},
		{"patch uri with a hyphenated label", "PATCH", "/v1/webhooks/" + id, `{"uri":"https://-bad-.com/h"}`, `uri host "-bad-.com"`},
		{"empty events", "POST", "/v1/webhooks", `{"uri":"https://example.com/h","subscribed_events":[]}`, "subscribed_events"},
		{"unknown event", "POST", "/v1/webhooks", `{"uri":"https://example.com/h","subscribed_events":["batch.completed"]}`, "batch.succeeded"},
		{"unknown field", "POST", "/v1/webhooks", `{"uri":"https://example.com/h","subscribed_events":["batch.succeeded"],"colour":"red"}`, `Unknown field "colour"`},
		{"camelCase field", "POST", "/v1/webhooks", `{"uri":"https://example.com/h","subscribedEvents":["batch.succeeded"]}`, `"subscribedEvents"`},
		{"field matched only case-insensitively", "POST", "/v1/webhooks", `{"URI":"https://example.com/h","subscribed_events":["batch.succeeded"]}`, `Unknown field "URI"`},
		{"duplicate field", "POST", "/v1/webhooks", `{"uri":"https://127.0.0.1/h","uri":"https://example.com/h","subscribed_events":["batch.succeeded"]}`, `duplicate field "uri"`},
		{"patch duplicate field", "PATCH", "/v1/webhooks/" + id, `{"name":"a","name":"b"}`, `duplicate field "name"`},
		{"patch rate_limit case", "PATCH", "/v1/webhooks/" + id, `{"rate_limit":{"Per_Second":5}}`, `"Per_Second"`},
		{"patch rate_limit unknown", "PATCH", "/v1/webhooks/" + id, `{"rate_limit":{"per_second":5,"colour":1}}`, `"colour"`},
		{"wrong type", "POST", "/v1/webhooks", `{"uri":"https://example.com/h","subscribed_events":"batch.succeeded"}`, "subscribed_events"},
		{"malformed json", "POST", "/v1/webhooks", `{"uri":"https://example.com/h",`, "Invalid JSON payload"},
		{"not an object", "POST", "/v1/webhooks", `["https://example.com/h"]`, "JSON object"},
		{"trailing data", "POST", "/v1/webhooks", `{"uri":"https://example.com/h"} {}`, "after the top-level object"},
		{"oversized", "POST", "/v1/webhooks", `{"name":"` + huge + `"}`, "payload size exceeds the limit"},
		{"bad page_token", "GET", "/v1/webhooks?page_token=bm9wZQ", nil, "page_token"},
		{"bad page_size", "GET", "/v1/webhooks?page_size=-1", nil, "page_size"},
		{"patch bad uri", "PATCH", "/v1/webhooks/" + id, `{"uri":"ftp://example.com/h"}`, "uri"},
		{"patch http uri", "PATCH", "/v1/webhooks/" + id + "?update_mask=uri", `{"uri":"http://example.com/h"}`, "uri"},
		{"patch empty events", "PATCH", "/v1/webhooks/" + id, `{"subscribed_events":[]}`, "subscribed_events"},
		{"patch unknown event", "PATCH", "/v1/webhooks/" + id, `{"subscribed_events":["nope.nope"]}`, "subscribed_events"},
		{"patch unknown mask", "PATCH", "/v1/webhooks/" + id + "?update_mask=name,colour", `{"name":"x"}`, `"colour"`},
		{"patch masked uri absent", "PATCH", "/v1/webhooks/" + id + "?update_mask=uri", `{"name":"x"}`, "uri"},
		{"patch unknown field", "PATCH", "/v1/webhooks/" + id, `{"name":"x","secret":"y"}`, `Unknown field "secret"`},
		{"patch bad state", "PATCH", "/v1/webhooks/" + id, `{"state":"paused"}`, "state"},
		{"rotate bad behavior", "POST", "/v1/webhooks/" + id + ":rotateSigningSecret", `{"revocation_behavior":"later"}`, "revoke_previous_secrets_immediately"},
		{"rotate unknown field", "POST", "/v1/webhooks/" + id + ":rotateSigningSecret", `{"behavior":"x"}`, `Unknown field "behavior"`},
		{"ping unknown field", "POST", "/v1/webhooks/" + id + ":ping", `{"x":1}`, `Unknown field "x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(tc.method, tc.path, tc.body)
			r.mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", tc.field)
		})
	}

	after := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK).raw
	if string(after) != string(snapshot) {
		t.Errorf("webhook changed:\nbefore %s\nafter  %s", snapshot, after)
	}
	l := f.call("GET", "/v1/webhooks", nil).must(t, http.StatusOK)
	if n := len(l.body["webhooks"].([]any)); n != 1 {
		t.Errorf("%d webhooks after bad creates, want 1", n)
	}
	if len(f.deliveries(id)) != 0 {
		t.Errorf("a rejected ping created a delivery")
	}
}

func TestDevPolicyAllowsHTTPLoopback(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.Policy = core.AddressPolicy{Dev: true} })
	f.call("POST", "/v1/webhooks", map[string]any{
		"uri": "http://127.0.0.1:9999/hook", "subscribed_events": []string{"batch.succeeded"},
	}).must(t, http.StatusOK)
}

func TestOtherProjectIsNotFound(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("mine").str("id")
	other := f.newKey(f.newProject("other").ID, false)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/webhooks/" + id, ""},
		{"PATCH", "/v1/webhooks/" + id, `{"name":"stolen"}`},
		{"POST", "/v1/webhooks/" + id + ":ping", ""},
		{"POST", "/v1/webhooks/" + id + ":rotateSigningSecret", "{}"},
		{"POST", "/v1/webhooks/" + id + "/rotate_secret", "{}"},
		{"POST", "/v1/webhooks/" + id + ":recover", `{"since":"2020-01-01T00:00:00Z"}`},
		{"GET", "/v1/webhooks/" + id + "/deliveries", ""},
		{"DELETE", "/v1/webhooks/" + id, ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		f.callWith(other, nil, c.method, c.path, body).mustError(t, http.StatusNotFound, "NOT_FOUND", id)
	}
	if l := f.callWith(other, nil, "GET", "/v1/webhooks", nil).must(t, http.StatusOK); string(l.raw) != "{}\n" {
		t.Errorf("other project's list = %s, want {}", l.raw)
	}
	g := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK)
	if g.str("name") != "mine" || len(g.body["signing_secrets"].([]any)) != 1 {
		t.Errorf("webhook changed by another project: %s", g.raw)
	}
}

func TestListPagination(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var want []string
	for i := range 7 {
		want = append(want, f.createWebhook(fmt.Sprintf("w%d", i)).str("id"))
	}
	slices.Sort(want)

	var got []string
	token, pages := "", 0
	for {
		path := "/v1/webhooks?page_size=3"
		if token != "" {
			path += "&page_token=" + token
		}
		r := f.call("GET", path, nil).must(t, http.StatusOK)
		pages++
		for _, w := range r.body["webhooks"].([]any) {
			got = append(got, w.(map[string]any)["id"].(string))
		}
		token = r.str("next_page_token")
		if token == "" {
			if _, ok := r.body["next_page_token"]; ok {
				t.Error("last page carries an empty next_page_token; want it omitted")
			}
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("%d pages, ids %v; want 3 pages, %v", pages, got, want)
	}

	// Tokens are bound to the project and tamper-evident.
	first := f.call("GET", "/v1/webhooks?page_size=3", nil).must(t, http.StatusOK).str("next_page_token")
	other := f.newKey(f.newProject("other").ID, false)
	f.callWith(other, nil, "GET", "/v1/webhooks?page_token="+first, nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "page_token")
	tampered := []byte(first)
	tampered[0] ^= 1
	f.call("GET", "/v1/webhooks?page_token="+string(tampered), nil).mustError(t, http.StatusBadRequest, "INVALID_ARGUMENT", "page_token")

	// page_size above the maximum is coerced, not rejected.
	if r := f.call("GET", "/v1/webhooks?page_size=5000", nil).must(t, http.StatusOK); len(r.body["webhooks"].([]any)) != 7 {
		t.Errorf("page_size=5000: %s", r.raw)
	}
}

func TestUpdateWebhook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("orig")
	id := created.str("id")
	path := "/v1/webhooks/" + id

	// Without a mask: only the fields present change.
	r := f.call("PATCH", path, `{"name":"renamed"}`).must(t, http.StatusOK)
	if r.str("name") != "renamed" || r.str("uri") != created.str("uri") || fmt.Sprint(r.body["subscribed_events"]) != fmt.Sprint(created.body["subscribed_events"]) {
		t.Errorf("patch name: %s", r.raw)
	}
	if _, ok := r.body["new_signing_secret"]; ok {
		t.Error("update shows new_signing_secret")
	}

	// With a mask: exactly the masked fields, whatever else the body holds.
	r = f.call("PATCH", path+"?update_mask=uri,state", map[string]any{
		"name": "ignored", "uri": "https://example.org/new", "state": "disabled",
	}).must(t, http.StatusOK)
	if r.str("name") != "renamed" || r.str("uri") != "https://example.org/new" || r.str("state") != "disabled" {
		t.Errorf("masked patch: %s", r.raw)
	}

	// A masked field absent from the body is cleared (optional fields only).
	r = f.call("PATCH", path+"?update_mask=name", `{}`).must(t, http.StatusOK)
	if r.str("name") != "" {
		t.Errorf("name not cleared: %s", r.raw)
	}

	r = f.call("PATCH", path+"?update_mask=subscribed_events", map[string]any{
		"subscribed_events": []string{"video.generated", "interaction.cancelled"},
	}).must(t, http.StatusOK)
	if fmt.Sprint(r.body["subscribed_events"]) != "[video.generated interaction.cancelled]" {
		t.Errorf("events: %s", r.raw)
	}

	// state "enabled" re-enables a webhook the server disabled.
	if _, err := f.store.UpdateWebhook(t.Context(), f.project.ID, id, func(w *core.Webhook) error {
		w.State = core.WebhookDisabledDueToFailedDeliveries
		w.FailingSince = time.Now().Add(-48 * time.Hour)
		w.ConsecutiveFailures = 9
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r = f.call("PATCH", path, `{"state":"enabled"}`).must(t, http.StatusOK)
	if r.str("state") != "enabled" {
		t.Errorf("re-enable: %s", r.raw)
	}
	w, err := f.store.GetWebhook(t.Context(), f.project.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if w.ConsecutiveFailures != 0 || !w.FailingSince.IsZero() {
		t.Errorf("re-enable kept the failure run: %d since %v", w.ConsecutiveFailures, w.FailingSince)
	}
	if len(w.Secrets) != 1 {
		t.Errorf("update touched secrets: %d", len(w.Secrets))
	}
}

// PATCH may park a webhook in disabled_due_to_failed_deliveries, as if the
// server had disabled it: its events are recorded as skipped (for
// :recover) until it is re-enabled.
func TestPatchParksWebhook(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("park", "batch.succeeded").str("id")
	r := f.call("PATCH", "/v1/webhooks/"+id, `{"state":"disabled_due_to_failed_deliveries"}`).must(t, http.StatusOK)
	if r.str("state") != "disabled_due_to_failed_deliveries" {
		t.Fatalf("patch: %s", r.raw)
	}
	if g := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK); g.str("state") != "disabled_due_to_failed_deliveries" {
		t.Fatalf("get: %s", g.raw)
	}
	f.call("POST", "/v1/events", map[string]any{"type": "batch.succeeded", "data": map[string]any{"id": "batches/p"}}).must(t, http.StatusOK)
	if ds := f.deliveries(id); len(ds) != 1 || ds[0].(map[string]any)["status"] != "skipped" {
		t.Errorf("a parked webhook's deliveries: %v", ds)
	}
	if r := f.call("PATCH", "/v1/webhooks/"+id, `{"state":"enabled"}`).must(t, http.StatusOK); r.str("state") != "enabled" {
		t.Fatalf("re-enable: %s", r.raw)
	}
}

// --time-scale compresses the 24 h during which rotated secrets stay
// valid, like every other period of the server.
func TestRotateUnderTimeScale(t *testing.T) {
	t.Parallel()
	f := setup(t, func(d *api.Deps) { d.TimeScale = 3600 })
	id := f.createWebhook("rot").str("id")
	before := time.Now()
	f.call("POST", "/v1/webhooks/"+id+":rotateSigningSecret", `{"revocation_behavior":"revoke_previous_secrets_after_h24"}`).must(t, http.StatusOK)
	after := time.Now()
	w, err := f.store.GetWebhook(t.Context(), f.project.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Secrets) != 2 {
		t.Fatalf("%d secrets after rotation", len(w.Secrets))
	}
	// The store keeps microseconds.
	if exp := w.Secrets[1].ExpireTime; !inWindow(exp, before.Add(24*time.Second), after.Add(24*time.Second), time.Microsecond) {
		t.Errorf("old secret expires at %v, want 24 s (24 h / 3600) after the rotation, made between %v and %v", exp, before, after)
	}
}

func TestRotateSigningSecret(t *testing.T) {
	t.Parallel()
	f := setup(t)
	created := f.createWebhook("rot")
	id := created.str("id")
	first := created.str("new_signing_secret")

	before := time.Now()
	r := f.call("POST", "/v1/webhooks/"+id+":rotateSigningSecret", nil).must(t, http.StatusOK)
	after := time.Now()
	second := r.str("secret")
	if !secretRE.MatchString(second) || second == first || len(r.body) != 1 {
		t.Fatalf("rotate: %s", r.raw)
	}
	g := f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK)
	secrets := g.body["signing_secrets"].([]any)
	if len(secrets) != 2 {
		t.Fatalf("after h24 rotation: %s", g.raw)
	}
	cur, old := secrets[0].(map[string]any), secrets[1].(map[string]any)
	if cur["truncated_secret"] != "whsec_..."+second[len(second)-4:] || cur["expire_time"] != nil {
		t.Errorf("current secret: %v", cur)
	}
	if old["truncated_secret"] != "whsec_..."+first[len(first)-4:] {
		t.Errorf("old secret: %v", old)
	}
	// expire_time is RFC 3339 to the second.
	exp, err := time.Parse(time.RFC3339, fmt.Sprint(old["expire_time"]))
	if err != nil || !inWindow(exp, before.Add(24*time.Hour), after.Add(24*time.Hour), time.Second) {
		t.Errorf("old expire_time %v (%v), want 24 h after the rotation, made between %v and %v", old["expire_time"], err, before, after)
	}
	if strings.Contains(string(g.raw), first) || strings.Contains(string(g.raw), second) {
		t.Error("get shows a full secret")
	}

	// Stored sealed, never in plaintext.
	w, err := f.store.GetWebhook(t.Context(), f.project.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.Secrets {
		if strings.Contains(string(s.Sealed), strings.TrimPrefix(second, "whsec_")) || strings.Contains(string(s.Sealed), strings.TrimPrefix(first, "whsec_")) {
			t.Error("secret stored in plaintext")
		}
	}

	// Uppercase spelling and the rotate_secret alias.
	f.call("POST", "/v1/webhooks/"+id+"/rotate_secret", `{"revocation_behavior":"REVOKE_PREVIOUS_SECRETS_AFTER_H24"}`).must(t, http.StatusOK)
	if n := len(f.call("GET", "/v1/webhooks/"+id, nil).body["signing_secrets"].([]any)); n != 3 {
		t.Errorf("after a second h24 rotation: %d secrets, want 3", n)
	}

	// Immediately: only the new secret is left.
	r = f.call("POST", "/v1beta/webhooks/"+id+":rotateSigningSecret", `{"revocation_behavior":"revoke_previous_secrets_immediately"}`).must(t, http.StatusOK)
	g = f.call("GET", "/v1/webhooks/"+id, nil).must(t, http.StatusOK)
	secrets = g.body["signing_secrets"].([]any)
	if len(secrets) != 1 || secrets[0].(map[string]any)["truncated_secret"] != "whsec_..."+r.str("secret")[len(r.str("secret"))-4:] {
		t.Errorf("after immediate rotation: %s", g.raw)
	}

	// At most ten old secrets are kept.
	for range 13 {
		f.call("POST", "/v1/webhooks/"+id+":rotateSigningSecret", `{}`).must(t, http.StatusOK)
	}
	if n := len(f.call("GET", "/v1/webhooks/"+id, nil).body["signing_secrets"].([]any)); n != 1+core.MaxOldSigningSecrets {
		t.Errorf("%d secrets after many rotations, want %d", n, 1+core.MaxOldSigningSecrets)
	}
}

func TestDeleteAndPing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("d").str("id")

	r := f.call("POST", "/v1/webhooks/"+id+":ping", nil).must(t, http.StatusOK)
	if string(r.raw) != "{}\n" {
		t.Errorf("ping = %s, want {}", r.raw)
	}
	f.call("POST", "/v1/webhooks/"+id+":ping", "{}").must(t, http.StatusOK)
	ds := f.deliveries(id)
	if len(ds) != 2 {
		t.Fatalf("%d deliveries after two pings, want 2", len(ds))
	}
	d := ds[0].(map[string]any)
	if d["event_type"] != core.EventWebhookPing || d["webhook_id"] != id || d["status"] != "pending" {
		t.Errorf("ping delivery: %v", d)
	}
	ev, err := f.store.GetEvent(t.Context(), f.project.ID, d["event_id"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if want := `"data":{"id":"` + id + `"}`; !strings.Contains(string(ev.Payload), want) || !strings.Contains(string(ev.Payload), `"type":"webhook.ping"`) {
		t.Errorf("ping payload %s", ev.Payload)
	}

	r = f.call("DELETE", "/v1/webhooks/"+id, nil).must(t, http.StatusOK)
	if string(r.raw) != "{}\n" || r.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("delete = %q %q", r.raw, r.header.Get("Content-Type"))
	}
	f.call("GET", "/v1/webhooks/"+id, nil).mustError(t, http.StatusNotFound, "NOT_FOUND", id)
	f.call("DELETE", "/v1/webhooks/"+id, nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.call("POST", "/v1/webhooks/"+id+":ping", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")

	// Pending deliveries were cancelled, and the history stays readable.
	for _, d := range f.deliveries(id) {
		if st := d.(map[string]any)["status"]; st != "cancelled" {
			t.Errorf("delivery after delete: %v", st)
		}
	}
}

func TestUnknownVerbsAndRoutes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("v").str("id")
	f.call("POST", "/v1/webhooks/"+id+":explode", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", ":explode")
	f.call("POST", "/v1/webhooks/"+id, nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.call("GET", "/v1/webhooks/"+id+":ping", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.call("GET", "/v1/nothing", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	// A path served with other methods: 405 naming them in Allow (RFC
	// 9110 section 15.5.6); POST on a plain resource path stays an unknown
	// custom method.
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/v1/webhooks", "GET, POST"},
		{"DELETE", "/v1beta/webhooks", "GET, POST"},
		{"PUT", "/v1/webhooks/" + id, "GET, PATCH, DELETE"},
		{"GET", "/v1/events:batchPublish", "POST"},
	} {
		resp := f.call(c.method, c.path, nil)
		resp.mustError(t, http.StatusMethodNotAllowed, "UNIMPLEMENTED", "not allowed")
		if got := resp.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	f.call("PUT", "/v1/nothing", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.call("GET", "/v2/webhooks", nil).mustError(t, http.StatusNotFound, "NOT_FOUND")
	f.call("GET", "/v1/webhooks/nope/deliveries", nil).mustError(t, http.StatusNotFound, "NOT_FOUND", "nope")
}

// TestAllowOnCustomMethodPaths checks the Allow of a 405 on ":verb"
// paths: it names exactly the methods that serve the path, and a path that
// no method serves is 404. "PUT {id}:ping" listed GET, PATCH and DELETE,
// which answer 404 there (a method that has a route for the resource but
// not that verb names no method, as TestUnknownVerbsAndRoutes shows), and
// "PUT {id}:explode", which nothing serves, was 405 too.
func TestAllowOnCustomMethodPaths(t *testing.T) {
	t.Parallel()
	f := setup(t)
	id := f.createWebhook("v").str("id")
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/v1/webhooks/" + id + ":ping", "POST"},
		{"PUT", "/v1beta/webhooks/" + id + ":rotateSigningSecret", "POST"},
		{"PUT", "/v1/webhooks/" + id + ":listen", "GET"},
		{"PATCH", "/v1/deliveries/msg_x:redeliver", "POST"},
		{"PUT", "/v1/keys/x:revoke", "POST"},
		{"PUT", "/v1/webhooks/" + id, "GET, PATCH, DELETE"},
	} {
		resp := f.call(c.method, c.path, nil)
		resp.mustError(t, http.StatusMethodNotAllowed, "UNIMPLEMENTED", "not allowed")
		if got := resp.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	for _, c := range []struct{ method, path string }{
		{"PUT", "/v1/webhooks/" + id + ":explode"},
		{"PATCH", "/v1/deliveries/msg_x:explode"},
		{"PUT", "/v1/webhooks/:ping"},
		{"PUT", "/v1/webhooks/a:b/deliveries"},
	} {
		resp := f.call(c.method, c.path, nil)
		resp.mustError(t, http.StatusNotFound, "NOT_FOUND", "not found")
		if got := resp.header.Get("Allow"); got != "" {
			t.Errorf("%s %s: 404 with Allow %q", c.method, c.path, got)
		}
	}
}

// deliveries lists a webhook's deliveries (newest first).
func (f *fixture) deliveries(webhookID string) []any {
	f.t.Helper()
	r := f.call("GET", "/v1/webhooks/"+webhookID+"/deliveries", nil).must(f.t, http.StatusOK)
	ds, _ := r.body["deliveries"].([]any)
	return ds
}

// inWindow reports whether t, stored or shown truncated to precision, is
// a time from the window [from, to]: a time the server took while the
// test's call was in flight, bracketed by the test's own clock readings
// (the same clock), so it holds however long a loaded machine makes the
// call take.
func inWindow(t, from, to time.Time, precision time.Duration) bool {
	return !t.Before(from.Truncate(precision)) && !t.After(to)
}

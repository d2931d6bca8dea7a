// Drives longhook's WebhookService with the official @google/genai SDK
// (pinned in package.json) and checks the documented wire shapes
// (docs: product.md §2, gemini-reference.md §2 and §7).
//
// Environment: LONGHOOK_BASE_URL, LONGHOOK_API_KEY and, optionally,
// LONGHOOK_API_VERSION (unset: the SDK's default, v1 in 3.x).
// Exits non-zero on the first failed check. Run by internal/api's Go tests.
import assert from "node:assert/strict";
import { GoogleGenAI } from "@google/genai";

const baseUrl = process.env.LONGHOOK_BASE_URL;
const apiKey = process.env.LONGHOOK_API_KEY;
const apiVersion = process.env.LONGHOOK_API_VERSION || undefined;
assert.ok(baseUrl && apiKey, "LONGHOOK_BASE_URL and LONGHOOK_API_KEY are required");

const ai = new GoogleGenAI({ apiKey, apiVersion, httpOptions: { baseUrl } });
const hooks = ai.webhooks;

const ID = /^[a-z0-9]{36}$/;
const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// wire drops the SDK's client-side sdkHttpResponse property.
function wire(obj) {
  const { sdkHttpResponse, ...rest } = obj;
  return rest;
}

function truncated(secret) {
  return "whsec_..." + secret.slice(-4);
}

function checkWebhook(w, want) {
  assert.match(w.id, ID, "id");
  assert.equal(w.name, want.name, "name");
  assert.equal(w.uri, want.uri, "uri");
  assert.deepEqual(w.subscribed_events, want.subscribed_events, "subscribed_events");
  assert.equal(w.state, want.state ?? "enabled", "state");
  assert.match(w.create_time, RFC3339, "create_time");
  assert.match(w.update_time, RFC3339, "update_time");
  assert.ok(Array.isArray(w.signing_secrets) && w.signing_secrets.length >= 1, "signing_secrets");
  assert.equal(w.signing_secrets[0].expire_time, undefined, "current secret has no expire_time");
  for (const s of w.signing_secrets) {
    assert.match(s.truncated_secret, /^whsec_\.\.\..{4}$/, "truncated_secret");
  }
}

async function expectError(promise, status, googleStatus) {
  try {
    await promise;
  } catch (err) {
    const got = err.status ?? err.statusCode;
    assert.equal(got, status, `HTTP status of ${err}`);
    const body = typeof err.body === "string" ? JSON.parse(err.body) : null;
    assert.ok(body, `error body of ${err}`);
    assert.equal(body.error.code, status);
    assert.equal(body.error.status, googleStatus);
    assert.ok(body.error.message.length > 0);
    return body.error;
  }
  assert.fail(`expected HTTP ${status} ${googleStatus}`);
}

const run = Date.now().toString(36);

// create, several of them
const created = [];
for (let i = 0; i < 5; i++) {
  const input = {
    name: `sdk-${run}-${i}`,
    uri: `https://receiver.example/hook/${i}`,
    subscribed_events: ["batch.succeeded", "batch.failed"],
  };
  const w = await hooks.create(input);
  checkWebhook(w, input);
  assert.match(w.new_signing_secret, SECRET, "new_signing_secret");
  assert.equal(w.signing_secrets.length, 1);
  assert.equal(w.signing_secrets[0].truncated_secret, truncated(w.new_signing_secret));
  created.push(w);
}
const first = created[0];

// bad input is a 400 INVALID_ARGUMENT naming the field
const bad = await expectError(
  hooks.create({ uri: "http://receiver.example/h", subscribed_events: ["batch.succeeded"] }),
  400, "INVALID_ARGUMENT");
assert.match(bad.message, /uri/);
const badEvents = await expectError(
  hooks.create({ uri: "https://receiver.example/h", subscribed_events: ["batch.completed"] }),
  400, "INVALID_ARGUMENT");
assert.match(badEvents.message, /batch\.succeeded/);

// list across pages
const seen = [];
let page_token;
let pages = 0;
do {
  const page = await hooks.list({ page_size: 2, ...(page_token ? { page_token } : {}) });
  pages++;
  assert.ok(Array.isArray(page.webhooks), "webhooks array");
  assert.ok(page.webhooks.length <= 2, "page_size honoured");
  for (const w of page.webhooks) {
    assert.equal(w.new_signing_secret, undefined, "list hides new_signing_secret");
    seen.push(w.id);
  }
  page_token = page.next_page_token;
  assert.ok(pages <= 10, "pagination ends");
} while (page_token);
assert.equal(pages, 3, "5 webhooks in pages of 2");
assert.deepEqual([...seen].sort(), created.map((w) => w.id).sort(), "list returns every webhook once");
await expectError(hooks.list({ page_token: "tampered" }), 400, "INVALID_ARGUMENT");

// get
const got = await hooks.get(first.id);
checkWebhook(got, first);
assert.equal(got.id, first.id);
assert.equal(got.new_signing_secret, undefined, "get hides new_signing_secret");
assert.equal(got.create_time, first.create_time);

// update without update_mask: only the given fields change
let upd = await hooks.update(first.id, { name: "renamed" });
checkWebhook(upd, { ...first, name: "renamed" });

// update with update_mask: exactly the masked fields change
upd = await hooks.update(first.id, {
  name: "ignored-by-mask",
  uri: "https://receiver.example/moved",
  state: "disabled",
  update_mask: "uri,state",
});
checkWebhook(upd, { ...first, name: "renamed", uri: "https://receiver.example/moved", state: "disabled" });
upd = await hooks.update(first.id, { state: "enabled", update_mask: "state" });
assert.equal(upd.state, "enabled");
await expectError(hooks.update(first.id, { name: "x", update_mask: "colour" }), 400, "INVALID_ARGUMENT");

// rotate: after_h24 keeps the old secret for 24 h
const r1 = await hooks.rotateSigningSecret(first.id, {
  revocation_behavior: "revoke_previous_secrets_after_h24",
});
assert.deepEqual(Object.keys(wire(r1)), ["secret"]);
assert.match(r1.secret, SECRET);
assert.notEqual(r1.secret, first.new_signing_secret);
let after = await hooks.get(first.id);
assert.equal(after.signing_secrets.length, 2);
assert.equal(after.signing_secrets[0].truncated_secret, truncated(r1.secret));
assert.equal(after.signing_secrets[1].truncated_secret, truncated(first.new_signing_secret));
const expires = Date.parse(after.signing_secrets[1].expire_time);
assert.ok(Math.abs(expires - (Date.now() + 24 * 3600 * 1000)) < 60 * 1000, "old secret expires in 24 h");

// rotate with no behaviour (the SDK sends {}): the 24 h default
const r2 = await hooks.rotateSigningSecret(first.id);
assert.match(r2.secret, SECRET);
after = await hooks.get(first.id);
assert.equal(after.signing_secrets.length, 3);

// rotate immediately: only the new secret is left
const r3 = await hooks.rotateSigningSecret(first.id, {
  revocation_behavior: "revoke_previous_secrets_immediately",
});
after = await hooks.get(first.id);
assert.equal(after.signing_secrets.length, 1);
assert.equal(after.signing_secrets[0].truncated_secret, truncated(r3.secret));
await expectError(
  hooks.rotateSigningSecret(first.id, { revocation_behavior: "later" }), 400, "INVALID_ARGUMENT");

// ping, without and with a body: {} (delivery is asynchronous)
assert.deepEqual(wire(await hooks.ping(first.id)), {});
assert.deepEqual(wire(await hooks.ping(first.id, { body: {} })), {});

// delete: {} and then 404
for (const w of created) {
  assert.deepEqual(wire(await hooks.delete(w.id)), {});
}
await expectError(hooks.get(first.id), 404, "NOT_FOUND");
await expectError(hooks.delete(first.id), 404, "NOT_FOUND");
const empty = await hooks.list();
assert.deepEqual(empty.webhooks ?? [], []);

console.log(`ok: @google/genai webhooks against ${baseUrl} (apiVersion ${apiVersion ?? "default"})`);

// Verifies dynamic-webhook deliveries the Go test captured with npm "jose"
// (pinned in package.json), independently of longhook's Go verifier:
// jwtVerify against the server's remote JWKS with issuer and audience, then
// what a JWT library cannot know — body_sha256 is the SHA-256 of the raw
// body, jti is the webhook-id, and the signed data is the body's data.
//
// Input on stdin: {"jwks_url", "issuer", "deliveries": [{"audience",
// "webhook_id", "token", "body"}]}.
// Prints one line "RESULT <json>": per delivery {"ok": true, "payload"} or
// {"ok": false, "error"}, in input order. Exits non-zero only when the
// input itself is unusable. Run by internal/jobs' Go tests.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";

let input = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) input += chunk;
const c = JSON.parse(input);
assert.ok(c.jwks_url && c.issuer && Array.isArray(c.deliveries), "jwks_url, issuer and deliveries are required");

const jwks = createRemoteJWKSet(new URL(c.jwks_url));

async function verify(d) {
  const { payload, protectedHeader } = await jwtVerify(d.token, jwks, { issuer: c.issuer, audience: d.audience });
  const sum = createHash("sha256").update(Buffer.from(d.body, "utf8")).digest("base64url");
  assert.equal(payload.body_sha256, sum, "body_sha256 is not the SHA-256 of the raw body");
  assert.equal(payload.jti, d.webhook_id, "jti is not the webhook-id");
  const body = JSON.parse(d.body);
  assert.equal(payload.type, body.type, "type differs from the body's");
  assert.deepEqual(payload.data, body.data, "data differs from the body's");
  return { payload, alg: protectedHeader.alg };
}

const results = [];
for (const d of c.deliveries) {
  try {
    results.push({ ok: true, ...(await verify(d)) });
  } catch (err) {
    results.push({ ok: false, error: `${err.code ?? err.name}: ${err.message}` });
  }
}
console.log("RESULT " + JSON.stringify(results));

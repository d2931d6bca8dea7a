// Signs and verifies webhooks the way each provider does, with the
// provider's own npm library where it publishes one that signs:
//   stripe    stripe's webhooks.generateTestHeaderString / constructEvent
//   github    @octokit/webhooks-methods sign / verify
//   standard  standardwebhooks Webhook.sign / verify
//   slack     Node's crypto: @slack/bolt only verifies, and does not
//             export a signer (v0=hex(HMAC-SHA256("v0:<ts>:<body>")))
//   shopify   Node's crypto: @shopify/shopify-api only validates inside
//             its request adapters (base64(HMAC-SHA256(body)))
// Input on stdin: a JSON list of cases {op: "sign"|"verify", kind, secret,
// body, timestamp, id, headers}. Output: a list of {ok, headers?, error?}
// in the same order; exit 0 unless the input could not be read.
import crypto from "node:crypto";
import Stripe from "stripe";
import { sign as ghSign, verify as ghVerify } from "@octokit/webhooks-methods";
import { Webhook } from "standardwebhooks";

const stripe = new Stripe("sk_test_longhook");

function read() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => resolve(JSON.parse(data)));
    process.stdin.on("error", reject);
  });
}

function lower(h) {
  const out = {};
  for (const [k, v] of Object.entries(h || {})) out[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  return out;
}

const hmac = (secret, data, enc) => crypto.createHmac("sha256", secret).update(data, "utf8").digest(enc);

async function sign(c) {
  switch (c.kind) {
    case "stripe":
      return { "Stripe-Signature": stripe.webhooks.generateTestHeaderString({ payload: c.body, secret: c.secret, timestamp: c.timestamp }) };
    case "github":
      return { "X-Hub-Signature-256": await ghSign(c.secret, c.body), "X-GitHub-Delivery": c.id, "X-GitHub-Event": "ping" };
    case "standard":
      return {
        "webhook-id": c.id,
        "webhook-timestamp": String(c.timestamp),
        "webhook-signature": new Webhook(c.secret).sign(c.id, new Date(c.timestamp * 1000), c.body),
      };
    case "slack":
      return { "X-Slack-Signature": "v0=" + hmac(c.secret, `v0:${c.timestamp}:${c.body}`, "hex"), "X-Slack-Request-Timestamp": String(c.timestamp) };
    case "shopify":
      return { "X-Shopify-Hmac-Sha256": hmac(c.secret, c.body, "base64"), "X-Shopify-Event-Id": c.id, "X-Shopify-Webhook-Id": "webhook-" + c.id, "X-Shopify-Topic": "orders/create" };
  }
  throw new Error("unknown kind " + c.kind);
}

async function verify(c) {
  const h = lower(c.headers);
  switch (c.kind) {
    case "stripe":
      // Tolerance as Stripe's default (300 s), against the real clock.
      stripe.webhooks.constructEvent(c.body, h["stripe-signature"], c.secret);
      return;
    case "github":
      if (!(await ghVerify(c.secret, c.body, h["x-hub-signature-256"]))) throw new Error("signature does not match");
      return;
    case "standard":
      new Webhook(c.secret).verify(c.body, h);
      return;
    case "slack": {
      const want = "v0=" + hmac(c.secret, `v0:${h["x-slack-request-timestamp"]}:${c.body}`, "hex");
      if (!crypto.timingSafeEqual(Buffer.from(want), Buffer.from(h["x-slack-signature"] || ""))) throw new Error("signature does not match");
      return;
    }
    case "shopify": {
      const want = Buffer.from(hmac(c.secret, c.body, "base64"));
      const got = Buffer.from(h["x-shopify-hmac-sha256"] || "");
      if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) throw new Error("signature does not match");
      return;
    }
  }
  throw new Error("unknown kind " + c.kind);
}

async function run(c) {
  if (c.op === "sign") return { ok: true, headers: await sign(c) };
  try {
    await verify(c);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: String((e && e.message) || e) };
  }
}

// One process answers a whole list of cases: starting node (and loading
// stripe) costs far more than a case.
read()
  .then(async (cases) => {
    const out = [];
    for (const c of cases) out.push(await run(c));
    process.stdout.write(JSON.stringify(out));
    process.exit(0);
  })
  .catch((e) => {
    process.stderr.write(String((e && e.stack) || e));
    process.exit(2);
  });

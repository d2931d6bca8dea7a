// Shared helpers of the verifier scripts: read one JSON case from stdin,
// report the outcome through the exit code (0 verified, 1 rejected).
"use strict";
const crypto = require("node:crypto");

function readCase() {
  return new Promise((resolve, reject) => {
    let data = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (c) => (data += c));
    process.stdin.on("end", () => {
      try {
        resolve(JSON.parse(data));
      } catch (e) {
        reject(e);
      }
    });
    process.stdin.on("error", reject);
  });
}

// lowerHeaders flattens {"Name":["v"]} or {"name":"v"} into {"name":"v"}.
function lowerHeaders(h) {
  const out = {};
  for (const [k, v] of Object.entries(h || {})) {
    out[k.toLowerCase()] = Array.isArray(v) ? v[0] : v;
  }
  return out;
}

function bodySHA256(body) {
  return crypto.createHash("sha256").update(Buffer.from(body, "utf8")).digest("base64url");
}

// checkBinding checks what a JWT library cannot know: the token belongs to
// this body and this webhook-id.
function checkBinding(claims, headers, body) {
  if (claims.body_sha256 !== bodySHA256(body)) {
    throw new Error("body_sha256 does not match the body");
  }
  if (claims.jti !== headers["webhook-id"]) {
    throw new Error("jti does not match webhook-id");
  }
}

function main(verify) {
  readCase()
    .then(verify)
    .then((claims) => {
      process.stdout.write(JSON.stringify({ ok: true, claims: claims ?? null }));
      process.exit(0);
    })
    .catch((e) => {
      process.stdout.write(JSON.stringify({ ok: false, error: String((e && e.message) || e) }));
      process.exit(1);
    });
}

module.exports = { lowerHeaders, checkBinding, main };

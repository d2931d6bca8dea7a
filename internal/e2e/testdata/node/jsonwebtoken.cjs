// Verifies a dynamic-webhook JWT the way Gemini's docs suggest: npm
// "jsonwebtoken" with a key from "jwks-rsa", then the body and webhook-id
// binding. Input: {headers, body, jwks_url, issuer, audience, now?}.
"use strict";
const jwt = require("jsonwebtoken");
const jwksRsa = require("jwks-rsa");
const { lowerHeaders, checkBinding, main } = require("./lib.cjs");

main(async (c) => {
  const headers = lowerHeaders(c.headers);
  const token = headers["webhook-signature"];
  const decoded = jwt.decode(token, { complete: true });
  if (!decoded) throw new Error("not a JWT");
  const client = jwksRsa({ jwksUri: c.jwks_url, cache: false });
  const key = await client.getSigningKey(decoded.header.kid);
  const opts = { algorithms: ["RS256"], issuer: c.issuer, audience: c.audience };
  if (c.now) opts.clockTimestamp = c.now;
  const claims = jwt.verify(token, key.getPublicKey(), opts);
  checkBinding(claims, headers, c.body);
  return claims;
});

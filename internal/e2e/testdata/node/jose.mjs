// Verifies a dynamic-webhook JWT with npm "jose": remote JWKS, RS256,
// issuer and audience, then the body and webhook-id binding.
// Input: {headers, body, jwks_url, issuer, audience, now?}.
import { createRemoteJWKSet, jwtVerify } from "jose";
import lib from "./lib.cjs";

lib.main(async (c) => {
  const headers = lib.lowerHeaders(c.headers);
  const jwks = createRemoteJWKSet(new URL(c.jwks_url));
  const opts = { issuer: c.issuer, audience: c.audience, algorithms: ["RS256"] };
  if (c.now) opts.currentDate = new Date(c.now * 1000);
  const { payload } = await jwtVerify(headers["webhook-signature"], jwks, opts);
  lib.checkBinding(payload, headers, c.body);
  return payload;
});

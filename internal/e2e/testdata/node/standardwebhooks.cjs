// Verifies a Standard Webhooks v1 (HMAC) message with the npm
// "standardwebhooks" package. Input: {headers, body, secret}.
"use strict";
const { Webhook } = require("standardwebhooks");
const { lowerHeaders, main } = require("./lib.cjs");

main(async (c) => {
  new Webhook(c.secret).verify(c.body, lowerHeaders(c.headers));
  return null;
});

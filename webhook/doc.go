// Package webhook signs and verifies webhooks: Standard Webhooks v1
// (HMAC-SHA256 with a shared secret) and JWTs verified through a JWKS
// endpoint, the two schemes longhook and the Gemini API use. It depends on
// the standard library only.
//
// # Receiving
//
// [Receiver.Handler] is a whole receiving endpoint: it reads the raw body
// with a size limit, verifies it, calls your function with the verified
// message and answers 2xx only once that function returned nil, so a
// failed write makes the sender retry instead of losing the message:
//
//	v, err := webhook.NewVerifier([]string{os.Getenv("WEBHOOK_SECRET")}) // whsec_…
//	if err != nil {
//		log.Fatal(err) // no secret, or not a whsec_ secret
//	}
//	r := &webhook.Receiver{HMAC: v}
//	http.Handle("POST /hooks", r.Handler(func(ctx context.Context, res *webhook.Result, body []byte) error {
//		// In one transaction: if res.ID is already recorded, return nil (a
//		// redelivery); else decode body, do the work, record res.ID.
//		return nil
//	}))
//
// To write the handler yourself, keep the same order: read the raw body,
// verify, then decode. Verification works on the exact bytes received;
// decoding and re-encoding JSON first breaks it.
//
//	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
//	if err != nil {
//		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
//		return
//	}
//	if err := v.Verify(r.Header, body); err != nil {
//		http.Error(w, err.Error(), http.StatusUnauthorized) // never contains secrets
//		return
//	}
//	// Deduplicate on r.Header.Get(webhook.HeaderID), store durably, then answer 2xx.
//
// A [Verifier] accepts several secrets, so a receiver can roll a secret
// without dropping messages: configure old and new, and the sender signs
// with both during the overlap. The webhook-timestamp must be within
// [DefaultTolerance] (5 minutes) of the receiver's clock, which defeats
// replays; senders re-sign every retry, so the window holds across a
// 24-hour retry schedule. The package does not deduplicate: at-least-once
// delivery means the same webhook-id can arrive twice, and only the
// receiver's storage can remember it.
//
// For dynamic (per-job) webhooks the webhook-signature header carries a
// JWT instead. A [JWKSVerifier] fetches and caches the sender's public
// keys and checks the algorithm, key id, signature, issuer, audience,
// expiry, the SHA-256 of the body, that the token id equals the
// webhook-id and, when pinned with [WithProject], the sender's project.
// A multi-tenant sender (one longhook server for several projects) signs
// every project's tokens with the same keys, so its receivers must pin
// their project. A [Receiver] holds both verifiers and picks one by the shape
// of the header, for endpoints that accept both kinds.
//
// For a longhook server the three values [NewJWKSVerifier] needs are: the
// issuer is the server's public URL (its --public-url, in development
// "http://127.0.0.1:8080", without a trailing slash) and the JWKS is at
// issuer + "/.well-known/jwks.json"; the audience is the URI the event's
// webhook_config listed, exactly (or its webhook_config.audience); and the
// project is the id serve printed when it created the project (GET
// /v1/projects with an admin key, such as the one serve printed on first
// start, lists them).
//
// # Sending
//
// [Sign] and [SignAll] produce the webhook-signature value for one secret
// or for every secret of a rotation overlap; [AppendSignature] does the
// same without allocating. They are cheap enough to call on every delivery
// attempt: a [Secret] keeps a pool of keyed HMAC states. [NewSecret]
// generates a secret.
//
// [JWTSigner] signs tokens (RS256 by default, ES256 or EdDSA by key type)
// with any [crypto.Signer], and [JWTSigner.PublicJWK] gives the key to
// publish in the sender's [JWKS].
//
// # Signed content
//
// HMAC: the key is the base64-decoded part of the secret after "whsec_"; the
// MAC covers "{webhook-id}.{webhook-timestamp}.{raw body}"; the header is
// "v1," plus standard base64 of the MAC, entries separated by spaces.
//
// JWT: header {"alg":"RS256","kid":...,"typ":"JWT"}; claims iss, aud, sub,
// iat, exp (iat + 5 minutes), jti (= webhook-id), body_sha256 (unpadded
// base64url SHA-256 of the raw body, see [BodyHash]), project (the
// sender's tenant, a longhook addition) and the event's type,
// version, timestamp and data (see [Claims]).
//
// # Errors
//
// Every verification failure wraps one of the package's sentinel errors, so callers use
// [errors.Is]: [ErrMissingHeader], [ErrMalformed], [ErrInvalidSignature]
// (and its HMAC refinement [ErrNoMatchingSignature]), [ErrTimestampTooOld],
// [ErrTimestampTooNew], [ErrUnknownKeyID], [ErrAlgorithmNotAllowed],
// [ErrIssuer], [ErrAudience], [ErrProject], [ErrTokenExpired], [ErrTokenNotYetValid],
// [ErrBodyHash], [ErrTokenID], [ErrJWKSFetch], [ErrInvalidKey] and
// [ErrSchemeNotAccepted]. Messages never include secrets, keys or bodies.
//
// # Security choices
//
//   - Signatures are compared in constant time ([crypto/hmac.Equal]).
//   - HMAC signatures are checked before timestamps, so a timestamp error
//     describes an authentic but stale message, never a forgery.
//   - JWT algorithms come from an allow-list (RS256 by default); "none" and
//     HMAC algorithms are refused outright, and the algorithm must match the
//     type of the key the JWKS publishes under that key id, which defeats
//     algorithm-confusion attacks. RSA keys must have at least 2048 bits.
//   - JWKS fetches are rate-limited, bounded in size ([DefaultMaxJWKSSize])
//     and time, and shared between concurrent callers. Cached keys outlive a
//     failing endpoint by at most [MaxJWKSStale]; see [JWKSVerifier].
package webhook

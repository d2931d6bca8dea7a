package api

import "net/http"

// routes registers the whole API. Every API route exists under /v1,
// /v1beta and /v1alpha; ServeHTTP has authenticated the caller before any
// of them runs. Routes with a ":verb" suffix share one pattern per resource
// and dispatch on the verb by hand (ServeMux cannot split on ':').
func (s *server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.d.Metrics != nil {
		mux.Handle("GET /metrics", s.d.Metrics)
	}
	if s.d.JWKS != nil {
		mux.Handle("GET /.well-known/jwks.json", s.d.JWKS)
	}
	mux.HandleFunc("/", s.notFound)

	small, large := s.d.MaxBodyBytes, s.d.MaxPublishBodyBytes
	for _, v := range apiVersions {
		handle := func(method, path string, limit int64, fn apiFunc) {
			mux.Handle(method+" /"+v+path, s.api(limit, fn))
		}

		// WebhookService (product.md §2).
		handle("POST", "/webhooks", small, s.createWebhook)
		handle("GET", "/webhooks", small, s.listWebhooks)
		mux.Handle("GET /"+v+"/webhooks/{id}", s.listenOr(s.api(small, noVerb(s.getWebhook)))) // {id}:listen streams (listen.go)
		handle("PATCH", "/webhooks/{id}", small, noVerb(s.updateWebhook))
		handle("DELETE", "/webhooks/{id}", small, noVerb(s.deleteWebhook))
		handle("POST", "/webhooks/{id}", small, verbs(map[string]apiFunc{
			"ping":                s.pingWebhook,
			"rotateSigningSecret": s.rotateSigningSecret,
			"recover":             s.recoverDeliveries, // extension (§7)
		}))
		// Alias used by Google's guide.
		handle("POST", "/webhooks/{id}/rotate_secret", small, noVerb(s.rotateSigningSecret))

		// Publish (§7).
		handle("POST", "/events", large, s.publishEvent)
		handle("POST", "/events:batchPublish", large, s.batchPublish)

		// Deliveries (§7).
		handle("GET", "/webhooks/{id}/deliveries", small, noVerb(s.listDeliveries))
		handle("GET", "/deliveries/{id}", small, noVerb(s.getDelivery))
		handle("POST", "/deliveries/{id}", small, verbs(map[string]apiFunc{
			"redeliver": s.redeliver,
		}))

		// Admin (admin API keys only).
		handle("POST", "/projects", small, admin(s.createProject))
		handle("GET", "/projects", small, admin(s.listProjects))
		handle("POST", "/projects/{id}/keys", small, admin(noVerb(s.createKey)))
		handle("GET", "/projects/{id}/keys", small, admin(noVerb(s.listKeys)))
		handle("POST", "/keys/{id}", small, admin(verbs(map[string]apiFunc{
			"revoke": s.revokeKey,
		})))
	}
}

// Package docs embeds the machine-readable API descriptions kept next to
// the prose: openapi.json (serve's HTTP API, served at /openapi.json) and
// gateway.openapi.json (the gateway's endpoints).
package docs

import _ "embed"

// OpenAPI is the OpenAPI 3.1 document of serve's HTTP API.
//
//go:embed openapi.json
var OpenAPI []byte

// GatewayOpenAPI is the OpenAPI 3.1 document of the gateway's endpoints.
//
//go:embed gateway.openapi.json
var GatewayOpenAPI []byte

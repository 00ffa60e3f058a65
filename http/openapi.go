package http

import (
	_ "embed"
	nethttp "net/http"
)

//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 description of this API.
func OpenAPIDocument() []byte { return openAPIDocument }

func (s *Server) openAPI(w nethttp.ResponseWriter, r *nethttp.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}

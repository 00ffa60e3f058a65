package http

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// GetRoute is one GET route of the API, with the query variants its
// OpenAPI description offers: every value of an enum parameter, and the
// placeholders NOW (as_of), HIDDEN (a customer), GROUP and SERVER (a user
// serving the customer) for the parameters that take them.
type GetRoute struct {
	Pattern  string
	Variants []string
}

// APIGetRoutes walks the router for the authenticated GET routes and the
// OpenAPI document for their query parameters, so a route added later is
// tried without editing this test.
func APIGetRoutes(t *testing.T) []GetRoute {
	t.Helper()
	doc := oaLoad(t)
	paths, _ := doc.root["paths"].(map[string]any)
	var out []GetRoute
	for key, r := range oaRouterRoutes(t) {
		method, pattern, _ := strings.Cut(key, " ")
		if method != "GET" || !r.auth {
			continue
		}
		route := GetRoute{Pattern: pattern, Variants: []string{""}}
		item, _ := paths[pattern].(map[string]any)
		op, _ := item["get"].(map[string]any)
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			pm, _ := p.(map[string]any)
			if ref, ok := pm["$ref"].(string); ok {
				resolved, err := doc.resolve(ref)
				if err != nil {
					t.Fatal(err)
				}
				pm, _ = resolved.(map[string]any)
			}
			if pm["in"] != "query" {
				continue
			}
			name, _ := pm["name"].(string)
			schema, _ := pm["schema"].(map[string]any)
			if ref, ok := schema["$ref"].(string); ok {
				resolved, _ := doc.resolve(ref)
				schema, _ = resolved.(map[string]any)
			}
			if enum, ok := schema["enum"].([]any); ok {
				for _, v := range enum {
					if s, ok := v.(string); ok {
						route.Variants = append(route.Variants, "?"+url.Values{name: {s}}.Encode())
					}
				}
			}
			switch name {
			case "q":
				route.Variants = append(route.Variants, "?q=bertrand", "?q=hidden")
			case "as_of":
				route.Variants = append(route.Variants, "?as_of=NOW")
			case "customer_id":
				route.Variants = append(route.Variants, "?customer_id=HIDDEN")
			case "group":
				route.Variants = append(route.Variants, "?group=GROUP")
			case "assigned_user":
				route.Variants = append(route.Variants, "?assigned_user=SERVER")
			}
		}
		out = append(out, route)
	}
	slices.SortFunc(out, func(a, b GetRoute) int { return strings.Compare(a.Pattern, b.Pattern) })
	return out
}

package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	nethttp "net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/assignment-ledger/ledger/projections"
)

// The OpenAPI document (openapi.json, served on GET /openapi.json) is kept in
// step with the router by these tests. They need no database: NewServer only
// stores its dependencies, and chi.Walk only reads the routing tree.

// oaRoute is one route of the router and what its middleware chain tells.
type oaRoute struct {
	auth   bool // behind requireAuth
	admin  bool // behind requireAdmin or requireReader (403 to members)
	minPos bool // honours X-Min-Position
}

// oaRouterRoutes walks the real router: "METHOD /pattern" → route.
func oaRouterRoutes(t *testing.T) map[string]oaRoute {
	t.Helper()
	s := NewServer(Deps{Log: slog.New(slog.DiscardHandler)})
	routes := map[string]oaRoute{}
	err := chi.Walk(s.Router(), func(method, route string, _ nethttp.Handler, mws ...func(nethttp.Handler) nethttp.Handler) error {
		var r oaRoute
		for _, mw := range mws {
			name := runtime.FuncForPC(reflect.ValueOf(mw).Pointer()).Name()
			if strings.Contains(name, "/console.") {
				// The web console's HTML pages are not part of the JSON API.
				return nil
			}
			switch {
			case strings.Contains(name, ".requireAuth"):
				r.auth = true
			case strings.HasSuffix(name, ".requireAdmin"), strings.HasSuffix(name, ".requireReader"):
				r.admin = true
			case strings.Contains(name, ".minPosition"):
				r.minPos = true
			}
		}
		routes[method+" "+route] = r
		return nil
	})
	if err != nil {
		t.Fatalf("chi.Walk: %v", err)
	}
	// Guard the middleware detection above: if a middleware is renamed, the
	// checks that rely on it must fail rather than pass vacuously.
	var auth, admin, minPos int
	for _, r := range routes {
		if r.auth {
			auth++
		}
		if r.admin {
			admin++
		}
		if r.minPos {
			minPos++
		}
	}
	if len(routes) == 0 || auth == 0 || admin == 0 || minPos == 0 {
		t.Fatalf("router walk found %d routes, %d with requireAuth, %d with requireAdmin, %d with minPosition: "+
			"middleware detection in oaRouterRoutes is out of date", len(routes), auth, admin, minPos)
	}
	return routes
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaPathItemFields are the fixed fields of an OpenAPI 3.1 Path Item that are
// not operations.
var oaPathItemFields = []string{"$ref", "summary", "description", "servers", "parameters"}

type oaDoc struct {
	t    *testing.T
	root map[string]any
}

func oaLoad(t *testing.T) *oaDoc {
	t.Helper()
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(OpenAPIDocument()))
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if dec.More() {
		t.Fatal("openapi.json has data after the JSON document")
	}
	return &oaDoc{t: t, root: root}
}

// resolve follows a local $ref ("#/components/...") to its target.
func (d *oaDoc) resolve(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("$ref %q is not a local reference", ref)
	}
	var cur any = d.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("$ref %q does not resolve (no %q)", ref, tok)
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("$ref %q does not resolve (bad index %q)", ref, tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("$ref %q does not resolve (%q is inside a scalar)", ref, tok)
		}
	}
	return cur, nil
}

// deref returns v, or what it references when it is a Reference Object.
func (d *oaDoc) deref(v any) map[string]any {
	d.t.Helper()
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		target, err := d.resolve(ref)
		if err != nil {
			d.t.Error(err)
			return nil
		}
		v = target
	}
	d.t.Errorf("reference chain too long at %v", v)
	return nil
}

type oaOperation struct {
	key  string // "METHOD /path"
	path string
	op   map[string]any
	// params are the path item's and the operation's parameters, resolved.
	params []map[string]any
}

func (d *oaDoc) operations() []oaOperation {
	d.t.Helper()
	paths, ok := d.root["paths"].(map[string]any)
	if !ok {
		d.t.Fatal("openapi.json has no paths object")
	}
	var ops []oaOperation
	for path, raw := range paths {
		item, ok := raw.(map[string]any)
		if !ok {
			d.t.Errorf("path %s is not an object", path)
			continue
		}
		var shared []map[string]any
		if ps, ok := item["parameters"].([]any); ok {
			for _, p := range ps {
				shared = append(shared, d.deref(p))
			}
		}
		for field, v := range item {
			if !slices.Contains(oaMethods, field) {
				if !slices.Contains(oaPathItemFields, field) && !strings.HasPrefix(field, "x-") {
					d.t.Errorf("path %s has unknown field %q", path, field)
				}
				continue
			}
			op, ok := v.(map[string]any)
			if !ok {
				d.t.Errorf("%s %s is not an object", field, path)
				continue
			}
			o := oaOperation{key: strings.ToUpper(field) + " " + path, path: path, op: op, params: slices.Clone(shared)}
			if ps, ok := op["parameters"].([]any); ok {
				for _, p := range ps {
					o.params = append(o.params, d.deref(p))
				}
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key < ops[j].key })
	return ops
}

func (o oaOperation) param(in, name string) map[string]any {
	for _, p := range o.params {
		if p["in"] == in && strings.EqualFold(fmt.Sprint(p["name"]), name) {
			return p
		}
	}
	return nil
}

func (o oaOperation) responses() map[string]any {
	r, _ := o.op["responses"].(map[string]any)
	return r
}

// TestOpenAPIMatchesRouter fails when a route exists that the document
// lacks, or the document describes an operation the router lacks.
func TestOpenAPIMatchesRouter(t *testing.T) {
	routes := oaRouterRoutes(t)
	doc := oaLoad(t)
	documented := map[string]bool{}
	for _, o := range doc.operations() {
		documented[o.key] = true
		if _, ok := routes[o.key]; !ok {
			t.Errorf("openapi.json documents %s, which the router does not serve", o.key)
		}
	}
	var missing []string
	for key := range routes {
		if !documented[key] {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	for _, key := range missing {
		t.Errorf("the router serves %s, which openapi.json does not document", key)
	}
}

// TestOpenAPIDocumentIsWellFormed checks the document's own consistency.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	doc := oaLoad(t)
	if v := doc.root["openapi"]; v != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", v)
	}
	if info, ok := doc.root["info"].(map[string]any); !ok || info["title"] == nil || info["version"] == nil {
		t.Error("info needs a title and a version")
	}

	// Every $ref anywhere resolves.
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if _, err := doc.resolve(ref); err != nil {
					t.Errorf("%s: %v", where, err)
				}
			}
			for k, x := range v {
				walk(where+"/"+k, x)
			}
		case []any:
			for i, x := range v {
				walk(where+"/"+strconv.Itoa(i), x)
			}
		}
	}
	walk("#", doc.root)

	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	ids := map[string]string{}
	for _, o := range doc.operations() {
		id, _ := o.op["operationId"].(string)
		if id == "" {
			t.Errorf("%s has no operationId", o.key)
		} else if other, dup := ids[id]; dup {
			t.Errorf("%s and %s share operationId %q", other, o.key, id)
		} else {
			ids[id] = o.key
		}
		if s, _ := o.op["summary"].(string); s == "" {
			t.Errorf("%s has no summary", o.key)
		}

		resp := o.responses()
		ok2xx := false
		for code, r := range resp {
			if len(code) != 3 || (code[0] < '1' || code[0] > '5') {
				t.Errorf("%s: response key %q is not a status code", o.key, code)
				continue
			}
			res := doc.deref(r)
			if res == nil {
				continue
			}
			if d, _ := res["description"].(string); d == "" {
				t.Errorf("%s %s: response has no description", o.key, code)
			}
			if code[0] == '2' {
				ok2xx = true
			}
			if code[0] == '4' || code[0] == '5' {
				content, _ := res["content"].(map[string]any)
				if _, ok := content["application/problem+json"]; !ok {
					t.Errorf("%s %s: an error response must offer application/problem+json", o.key, code)
				}
			}
		}
		if !ok2xx {
			t.Errorf("%s has no 2xx response", o.key)
		}

		// Path parameters: exactly the template's, each required.
		want := map[string]bool{}
		for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
			want[m[1]] = true
		}
		for _, p := range o.params {
			if p["in"] != "path" {
				continue
			}
			name := fmt.Sprint(p["name"])
			if !want[name] {
				t.Errorf("%s declares path parameter %q that is not in the path", o.key, name)
			}
			if p["required"] != true {
				t.Errorf("%s: path parameter %q must be required", o.key, name)
			}
			delete(want, name)
		}
		for name := range want {
			t.Errorf("%s does not declare path parameter %q", o.key, name)
		}

		// JSON request bodies mirror the server's strict decoding.
		if rb := doc.deref(o.op["requestBody"]); rb != nil {
			content, _ := rb["content"].(map[string]any)
			if len(content) == 0 {
				t.Errorf("%s: requestBody has no content", o.key)
			}
			if mt, ok := content["application/json"].(map[string]any); ok {
				s := doc.deref(mt["schema"])
				if s["type"] != "object" || s["additionalProperties"] != false {
					t.Errorf("%s: the JSON request body schema must be an object with additionalProperties: false "+
						"(the server rejects unknown fields)", o.key)
				}
			}
		}
	}
}

// TestOpenAPIDescribesMiddleware checks what the router's middleware chain
// implies: authentication, admin-only routes, X-Min-Position and
// Idempotency-Key.
func TestOpenAPIDescribesMiddleware(t *testing.T) {
	routes := oaRouterRoutes(t)
	doc := oaLoad(t)
	global, _ := doc.root["security"].([]any)
	schemes := map[string]any{}
	if c, ok := doc.root["components"].(map[string]any); ok {
		schemes, _ = c["securitySchemes"].(map[string]any)
	}
	for _, req := range global {
		for name := range req.(map[string]any) {
			if _, ok := schemes[name]; !ok {
				t.Errorf("security requirement %q names no security scheme", name)
			}
		}
	}
	// Commands that do not take an Idempotency-Key, and why.
	noIdempotency := map[string]string{
		"POST /v1/users/{id}/notifications/read": "not an event-sourced command; marking read is idempotent by nature",
		"POST /invitations/{token}":              "a browser's form; a token is accepted once, so a second press finds it used",
	}
	for _, o := range doc.operations() {
		r, ok := routes[o.key]
		if !ok {
			continue // reported by TestOpenAPIMatchesRouter
		}
		sec := global
		if s, ok := o.op["security"]; ok {
			sec, _ = s.([]any)
		}
		resp := o.responses()
		switch {
		case r.auth && len(sec) == 0:
			t.Errorf("%s requires an API key, but the document lists no security for it", o.key)
		case !r.auth && len(sec) != 0:
			t.Errorf("%s needs no authentication, but the document requires it (want security: [])", o.key)
		}
		if _, ok := resp["401"]; r.auth && !ok {
			t.Errorf("%s requires an API key but does not document 401", o.key)
		}
		if _, ok := resp["403"]; r.admin && !ok {
			t.Errorf("%s is admin-only but does not document 403", o.key)
		}
		hasMinPos := o.param("header", "X-Min-Position") != nil
		if r.minPos != hasMinPos {
			t.Errorf("%s: X-Min-Position documented = %v, honoured by the router = %v", o.key, hasMinPos, r.minPos)
		}
		method := strings.SplitN(o.key, " ", 2)[0]
		if method == "POST" || method == "PUT" || method == "DELETE" {
			_, exempt := noIdempotency[o.key]
			hasKey := o.param("header", "Idempotency-Key") != nil
			if !exempt && !hasKey {
				t.Errorf("%s does not document the Idempotency-Key header", o.key)
			}
			if exempt && hasKey {
				t.Errorf("%s documents Idempotency-Key, which its handler ignores (%s)", o.key, noIdempotency[o.key])
			}
			// A keyed retry after the customer's erasure answers 409
			// replay_unavailable (API.md, Idempotency).
			onCustomer := strings.HasPrefix(o.path, "/v1/customers/{id}") || strings.HasPrefix(o.path, "/v1/follow-ups/")
			if _, ok := resp["409"]; hasKey && onCustomer && !ok {
				t.Errorf("%s takes an Idempotency-Key on a customer but does not document 409 (replay_unavailable)", o.key)
			}
		}
	}
}

// TestOpenAPIServed checks GET /openapi.json answers the document.
func TestOpenAPIServed(t *testing.T) {
	s := NewServer(Deps{Log: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(nethttp.MethodGet, "/openapi.json", nil))
	if rec.Code != nethttp.StatusOK {
		t.Fatalf("GET /openapi.json = %d, want 200", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), OpenAPIDocument()) {
		t.Error("GET /openapi.json does not answer the embedded document")
	}
}

// TestOpenAPILintsClean asserts, on the document GET /openapi.json serves,
// what Redocly's recommended rules warn about: every tag has a
// description, every operation documents at least one 4xx answer, and
// info.license names the license with an identifier or URL. The 4xx the
// operations without a body or parameters document, a 400 for a query
// string PostgreSQL could not store, is checked to be real.
func TestOpenAPILintsClean(t *testing.T) {
	s := NewServer(Deps{Log: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(nethttp.MethodGet, "/openapi.json", nil))
	var doc struct {
		Info struct {
			License *struct{ Name, Identifier, URL string } `json:"license"`
		} `json:"info"`
		Tags []struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"tags"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); rec.Code != 200 || err != nil {
		t.Fatalf("GET /openapi.json: %d %v", rec.Code, err)
	}
	if l := doc.Info.License; l == nil || l.Name == "" || (l.Identifier == "") == (l.URL == "") {
		t.Errorf("info.license %+v: want a name and either an identifier or a URL", l)
	}
	// The operations that never read the database.
	noDatabase := map[string]bool{"get /healthz": true, "get /metrics": true, "get /openapi.json": true, "get /v1/ledger/public-key": true}
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
		if strings.TrimSpace(tag.Description) == "" {
			t.Errorf("tag %q has no description", tag.Name)
		}
	}
	for path, item := range doc.Paths {
		for method, raw := range item {
			if !slices.Contains(oaMethods, method) {
				continue
			}
			var op struct {
				Tags      []string                   `json:"tags"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			has4xx := false
			for code := range op.Responses {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			if !has4xx {
				t.Errorf("%s %s documents no 4xx response", strings.ToUpper(method), path)
			}
			for _, tag := range op.Tags {
				if !declared[tag] {
					t.Errorf("%s %s uses the undeclared tag %q", strings.ToUpper(method), path, tag)
				}
			}
			// Every route checks its query string (checkQuery), so every
			// operation answers 400 (found by hostile testing: eight did
			// not document it).
			// And every operation that reads the database answers 503 when
			// it is unreachable or too slow (found by hostile testing: 23
			// did not document it).
			if _, ok := op.Responses["503"]; !ok && !noDatabase[method+" "+path] {
				t.Errorf("%s %s documents no 503, though it reads the database", strings.ToUpper(method), path)
			}
			if _, ok := op.Responses["400"]; !ok {
				t.Errorf("%s %s documents no 400, though every route refuses a NUL byte in its query", strings.ToUpper(method), path)
			} else if method == "get" && !strings.Contains(path, "{") {
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, httptest.NewRequest(nethttp.MethodGet, path+"?x=%00", nil))
				if rec.Code != nethttp.StatusBadRequest {
					t.Errorf("GET %s?x=%%00 = %d, want the documented 400", path, rec.Code)
				}
			}
		}
	}
}

// TestOpenAPINotificationTypes: the document's notification types are
// every type the notifications read model makes, no more.
func TestOpenAPINotificationTypes(t *testing.T) {
	doc := oaLoad(t)
	n := doc.deref(doc.deref(doc.root["components"])["schemas"])["Notification"]
	typ := doc.deref(doc.deref(doc.deref(n)["properties"])["type"])
	var enum []string
	for _, v := range typ["enum"].([]any) {
		enum = append(enum, v.(string))
	}
	want := projections.NotificationTypes()
	slices.Sort(enum)
	slices.Sort(want)
	if !slices.Equal(enum, want) {
		t.Errorf("Notification.type enum %v, the read model's types %v", enum, want)
	}
}

// TestDocumentedQuery: the query parameters the API checks requests
// against are the document's, by operation.
func TestDocumentedQuery(t *testing.T) {
	q, err := documentedQuery(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	for op, want := range map[string][]string{
		"POST /v1/clients/import":    {"dry_run", "update_existing", "invite"},
		"GET /v1/customers":          {"q", "status", "assigned_user", "group", "view", "format", "limit", "cursor"},
		"GET /v1/customers/{id}":     {},
		"POST /v1/customers/bulk":    {},
		"GET /v1/users/{id}/clients": {"q", "as_of", "limit", "cursor"},
	} {
		got, ok := q[op]
		slices.Sort(got)
		slices.Sort(want)
		if !ok || !slices.Equal(got, want) {
			t.Errorf("%s takes %v (listed %v), want %v", op, got, ok, want)
		}
	}
}

package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/handlers"
	"github.com/ssechat/ssechat/internal/chattest"
)

// staticCatchAll is the spec's name for gin's NoRoute handler, which serves
// the static files: it is documented but is not a registered route.
const staticCatchAll = "/{file}"

// loadSpec loads and validates openapi.yaml at the repository root.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "openapi.yaml")
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// routerRoutes returns "METHOD /path/{param}" for every route gin registers.
func routerRoutes(t *testing.T, h http.Handler) map[string]bool {
	t.Helper()
	engine, ok := h.(*gin.Engine)
	if !ok {
		// The app wraps the router: list the routes of the router itself.
		t.Logf("app handler is %T, not *gin.Engine: listing handlers.New's routes", h)
		engine = handlers.New(slog.New(slog.DiscardHandler), nil, nil, nil, fstest.MapFS{}, handlers.Options{})
	}
	out := map[string]bool{}
	for _, r := range engine.Routes() {
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		out[r.Method+" "+strings.Join(segs, "/")] = true
	}
	return out
}

// specRoutes returns "METHOD /path" for every operation of the spec except
// the static catch-all.
func specRoutes(doc *openapi3.T) map[string]bool {
	out := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		if path == staticCatchAll {
			continue
		}
		for method := range item.Operations() {
			out[method+" "+path] = true
		}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestOpenAPIDescribesEveryRoute fails when a route is added to the router
// without openapi.yaml, or documented without being routed.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	srv := chattest.Start(t)
	routed, documented := routerRoutes(t, srv.App.Handler()), specRoutes(doc)
	for _, r := range sortedKeys(routed) {
		if !documented[r] {
			t.Errorf("route %s is registered but not in openapi.yaml", r)
		}
	}
	for _, r := range sortedKeys(documented) {
		if !routed[r] {
			t.Errorf("openapi.yaml documents %s, which the router does not register", r)
		}
	}
	if doc.Paths.Find(staticCatchAll) == nil || doc.Paths.Find(staticCatchAll).Get == nil {
		t.Errorf("openapi.yaml lacks GET %s, the static files served by NoRoute", staticCatchAll)
	}

	// Only login and the static files are public; every other operation
	// takes the document's bearer-or-cookie security.
	if len(doc.Security) != 2 {
		t.Errorf("document security = %v, want bearerAuth or cookieAuth", doc.Security)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			public := op.Security != nil && len(*op.Security) == 0
			wantPublic := !strings.HasPrefix(path, "/api/") || path == "/api/login"
			if public != wantPublic {
				t.Errorf("%s %s: public = %v, want %v", method, path, public, wantPublic)
			}
			if op.Security != nil && !public {
				t.Errorf("%s %s overrides the document's security", method, path)
			}
		}
	}
}

// specClient sends requests to a real server and checks every answer
// against openapi.yaml.
type specClient struct {
	t      *testing.T
	base   string
	router routers.Router
}

func newSpecClient(t *testing.T, doc *openapi3.T, base string) *specClient {
	t.Helper()
	doc.Servers = openapi3.Servers{{URL: base}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("route openapi.yaml: %v", err)
	}
	return &specClient{t: t, base: base, router: router}
}

type call struct {
	method, path string
	body         string // sent as application/json unless contentType says otherwise
	contentType  string
	token        string // bearer token
	cookie       string // session cookie
	origin       string
	wantStatus   int
	badRequest   bool   // the request itself breaks the spec on purpose
	noBody       bool   // validate status and headers only (no decoder for the type)
	routeAs      string // path to find the spec's route with, if not path
}

// do sends c, checks its status and validates the request (unless it is
// bad on purpose) and the response against the spec. It returns the body.
func (s *specClient) do(c call) []byte {
	s.t.Helper()
	req := s.request(c)
	find := req
	if c.routeAs != "" {
		find = s.request(call{method: c.method, path: c.routeAs})
	}
	route, params, err := s.router.FindRoute(find)
	if err != nil {
		s.t.Fatalf("%s %s: not in openapi.yaml: %v", c.method, c.path, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true, // a status the spec does not list fails
		ExcludeResponseBody:   c.noBody,
		MultiError:            true,
	}
	input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if !c.badRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
			s.t.Errorf("%s %s: request does not match openapi.yaml: %v", c.method, c.path, err)
		}
		req = s.request(c) // validation consumed the body
		input.Request = req
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", c.method, c.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", c.method, c.path, err)
	}
	if resp.StatusCode != c.wantStatus {
		s.t.Fatalf("%s %s: status %d, want %d: %s", c.method, c.path, resp.StatusCode, c.wantStatus, body)
	}
	s.validate(input, resp, body)
	return body
}

func (s *specClient) validate(input *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	s.t.Helper()
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                input.Options,
	})
	if err != nil {
		s.t.Errorf("%s %s: %d response does not match openapi.yaml: %v\nbody: %s",
			input.Request.Method, input.Request.URL.Path, resp.StatusCode, err, body)
	}
}

func (s *specClient) request(c call) *http.Request {
	s.t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, s.base+c.path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	switch {
	case c.contentType != "":
		req.Header.Set("Content-Type", c.contentType)
	case c.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: "session", Value: c.cookie})
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	return req
}

func (s *specClient) login(name string) string {
	s.t.Helper()
	var out struct{ Token string }
	body := s.do(call{method: "POST", path: "/api/login", body: `{"username":"` + name + `","password":"pw-` + name + `"}`, wantStatus: 200})
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		s.t.Fatalf("login %s: %s", name, body)
	}
	return out.Token
}

// TestResponsesMatchOpenAPI drives a real server through the main routes
// and their errors and validates every answer against openapi.yaml.
func TestResponsesMatchOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	srv := chattest.Start(t)
	s := newSpecClient(t, doc, srv.URL)

	alice, bob, carol := s.login("alice"), s.login("bob"), s.login("carol")
	for _, tok := range []string{alice, bob} {
		s.do(call{method: "POST", path: "/api/rooms/lobby/join", token: tok, wantStatus: 200})
	}
	// A cookie-authenticated write with the JSON content type it needs.
	s.do(call{method: "POST", path: "/api/rooms/lobby/join", cookie: alice, body: "{}", wantStatus: 200})

	var sent struct{ ID, Room, To string }
	body := s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"hello"}`, wantStatus: 201})
	if err := json.Unmarshal(body, &sent); err != nil || sent.Room != "lobby" {
		t.Fatalf("room post answered %s", body)
	}
	body = s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"@Bob meet at noon"}`, wantStatus: 201})
	sent.Room = ""
	if err := json.Unmarshal(body, &sent); err != nil || sent.To != "bob" || sent.Room != "" {
		t.Fatalf("@name post answered %s, want a private event", body)
	}
	s.do(call{method: "POST", path: "/api/users/alice/messages", token: bob, body: `{"text":"ok"}`, wantStatus: 201})
	s.do(call{method: "POST", path: "/api/rooms/lobby/read", token: bob, body: `{"id":"` + sent.ID + `"}`, wantStatus: 200})
	s.do(call{method: "POST", path: "/api/rooms/lobby/read", token: bob, body: `{"id":"1"}`, wantStatus: 200})
	s.do(call{method: "POST", path: "/api/conversations/Alice/read", token: bob, body: `{"id":"` + sent.ID + `"}`, wantStatus: 200})
	s.do(call{method: "POST", path: "/api/conversations/alice/read", cookie: bob, body: `{"id":"1"}`, wantStatus: 200})

	for _, path := range []string{
		"/api/me", "/api/rooms", "/api/rooms?limit=1", "/api/rooms?limit=1&after=lobby", "/api/conversations",
		"/api/rooms/lobby/members",
		"/api/rooms/lobby/messages", "/api/rooms/lobby/messages?limit=1&before=" + sent.ID,
		"/api/users/bob/messages", "/api/users/carol/messages?limit=500",
	} {
		s.do(call{method: "GET", path: path, token: alice, wantStatus: 200})
	}

	// Errors, each with the {"error"} body the spec promises.
	s.do(call{method: "GET", path: "/api/rooms/lobby/messages?limit=0", token: alice, wantStatus: 400, badRequest: true})
	s.do(call{method: "GET", path: "/api/rooms/lobby/messages?before=x", token: alice, wantStatus: 400, badRequest: true})
	s.do(call{method: "POST", path: "/api/rooms/..x/join", token: alice, wantStatus: 200})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":""}`, wantStatus: 400, badRequest: true})
	s.do(call{method: "POST", path: "/api/login", body: `{"username":"no spaces","password":"x"}`, wantStatus: 400, badRequest: true})
	s.do(call{method: "POST", path: "/api/login", body: `{"username":"alice","password":"wrong"}`, wantStatus: 401})
	s.do(call{method: "POST", path: "/api/login", body: `{"username":"alice","password":"pw-alice"}`, origin: "http://evil.example", wantStatus: 403})
	s.do(call{method: "GET", path: "/api/me", wantStatus: 401, badRequest: true})
	s.do(call{method: "GET", path: "/api/stream", token: "not-a-token", wantStatus: 401})
	s.do(call{method: "GET", path: "/api/rooms/lobby/messages", token: carol, wantStatus: 403})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: carol, body: `{"text":"let me in"}`, wantStatus: 403})
	s.do(call{method: "POST", path: "/api/rooms/lobby/leave", cookie: alice, body: "{}", origin: "http://evil.example", wantStatus: 403})
	s.do(call{method: "GET", path: "/api/rooms/nowhere/members", token: alice, wantStatus: 404})
	s.do(call{method: "POST", path: "/api/users/nobody/messages", token: alice, body: `{"text":"hi"}`, wantStatus: 404})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"@nobody hi"}`, wantStatus: 404})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"@carol not in the room"}`, wantStatus: 404})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"hi","extra":1}`, wantStatus: 400, badRequest: true})
	s.do(call{method: "GET", path: "/api/rooms?limit=0", token: alice, wantStatus: 400, badRequest: true})
	s.do(call{method: "POST", path: "/api/rooms/lobby/read", token: alice, body: `{"id":41}`, wantStatus: 400, badRequest: true})
	s.do(call{method: "POST", path: "/api/rooms/lobby/read", token: alice, body: `{"id":"999999"}`, wantStatus: 400})
	s.do(call{method: "POST", path: "/api/rooms/lobby/read", token: carol, body: `{"id":"1"}`, wantStatus: 403})
	s.do(call{method: "POST", path: "/api/rooms/nowhere/read", token: alice, body: `{"id":"1"}`, wantStatus: 404})
	s.do(call{method: "POST", path: "/api/conversations/nobody/read", token: alice, body: `{"id":"1"}`, wantStatus: 404})
	s.do(call{method: "POST", path: "/api/conversations/bob/read", cookie: alice, body: `{"id":"1"}`, origin: "http://evil.example", wantStatus: 403})
	s.do(call{method: "POST", path: "/api/conversations/bob/read", cookie: alice, body: `{"id":"1"}`, contentType: "text/plain", wantStatus: 415, badRequest: true})
	s.do(call{method: "POST", path: "/api/logout?all=maybe", token: alice, wantStatus: 400, badRequest: true})
	s.do(call{method: "POST", path: "/api/logout?all=1", token: s.login("dave"), wantStatus: 204})
	big := `{"text":"` + strings.Repeat("a", 70_000) + `"}`
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: big, wantStatus: 413, badRequest: true})
	s.do(call{method: "POST", path: "/api/rooms/lobby/leave", cookie: alice, wantStatus: 415, badRequest: true})
	s.do(call{method: "POST", path: "/api/rooms/lobby/leave", cookie: alice, body: "{}", contentType: "text/plain", wantStatus: 415, badRequest: true})
	s.do(call{method: "POST", path: "/api/rooms/lobby/leave", token: alice, wantStatus: 204})
	s.do(call{method: "POST", path: "/api/logout", token: carol, wantStatus: 204})

	// The stream: status and headers (its body is never-ending SSE).
	req := s.request(call{method: "GET", path: "/api/stream?last_event_id=" + url.QueryEscape(sent.ID), token: bob})
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		t.Fatalf("stream route: %v", err)
	}
	stream := chattest.OpenStream(t, req)
	stream.Ready()
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, ExcludeResponseBody: true}
	s.validate(&openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}, stream.Resp, nil)
	if ct := stream.Resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream Content-Type %q", ct)
	}
	stream.Close()

	// The static client.
	// The static client. gorillamux, like OpenAPI, cannot match a nested
	// path to /{file}: find the route with a one-segment path.
	s.do(call{method: "GET", path: "/", wantStatus: 200, noBody: true})
	s.do(call{method: "GET", path: "/app.css", wantStatus: 200, noBody: true})
	s.do(call{method: "GET", path: "/js/app.js", routeAs: "/app.js", wantStatus: 200, noBody: true, badRequest: true})
	s.do(call{method: "HEAD", path: "/app.css", wantStatus: 200, noBody: true})
	s.do(call{method: "GET", path: "/no-such-file.txt", wantStatus: 404})
}

// TestUnroutedAnswersAreJSONErrors covers the answers no operation lists:
// 405 for a known path with another method and 404 for an unknown API path.
func TestUnroutedAnswersAreJSONErrors(t *testing.T) {
	doc := loadSpec(t)
	srv := chattest.Start(t)
	errSchema := doc.Components.Schemas["Error"].Value
	for _, c := range []struct {
		method, path string
		want         int
		spec         string
	}{
		{"DELETE", "/api/me", 405, "MethodNotAllowed"},
		{"GET", "/api/login", 405, "MethodNotAllowed"},
		{"PUT", "/api/rooms/lobby/messages", 405, "MethodNotAllowed"},
		{"GET", "/api/nothing", 404, "NoRoute"},
		{"POST", "/index.html", 404, "NoRoute"},
	} {
		if doc.Components.Responses[c.spec] == nil {
			t.Errorf("openapi.yaml lacks components/responses/%s", c.spec)
		}
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v any
		if resp.StatusCode != c.want || json.Unmarshal(body, &v) != nil || errSchema.VisitJSON(v) != nil {
			t.Errorf("%s %s: %d %s, want %d with {\"error\"}", c.method, c.path, resp.StatusCode, body, c.want)
		}
		if c.want == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without an Allow header", c.method, c.path)
		}
	}
}

// TestStreamEventsMatchOpenAPI checks every kind of stream event against
// the schema openapi.yaml names for it in the stream's x-sse-events map.
func TestStreamEventsMatchOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	ok200 := doc.Paths.Find("/api/stream").Get.Responses.Status(200).Value
	kinds, _ := ok200.Extensions["x-sse-events"].(map[string]any)
	schemas := map[string]*openapi3.Schema{}
	for kind, ref := range kinds {
		name := strings.TrimPrefix(ref.(string), "#/components/schemas/")
		if doc.Components.Schemas[name] == nil {
			t.Fatalf("x-sse-events: %s names a missing schema %v", kind, ref)
		}
		schemas[kind] = doc.Components.Schemas[name].Value
	}
	seen := map[string]bool{}
	check := func(frames []chattest.Frame) {
		t.Helper()
		for _, f := range frames {
			schema := schemas[f.Kind]
			if schema == nil {
				t.Errorf("event kind %q is not in openapi.yaml's x-sse-events: %s", f.Kind, f.Data)
				continue
			}
			var v any
			if err := json.Unmarshal([]byte(f.Data), &v); err != nil {
				t.Errorf("%s data is not JSON: %s", f.Kind, f.Data)
				continue
			}
			if err := schema.VisitJSON(v); err != nil {
				t.Errorf("%s data %s does not match openapi.yaml: %v", f.Kind, f.Data, err)
			}
			if !f.HasID || f.ID != f.Event.ID {
				t.Errorf("%s: id line %q, data id %q", f.Kind, f.ID, f.Event.ID)
			}
			seen[f.Kind] = true
		}
	}

	// Rooms above two members are large: they send members counts.
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{LargeRoom: 2, MembersInterval: 10 * time.Millisecond}))
	alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
	alice.Join("lobby")
	aliceS := alice.Stream("")
	check([]chattest.Frame{aliceS.Expect("ready", nil)})
	bob.Join("lobby")
	bobS := bob.Stream("")
	bobS.Ready()
	hello := alice.Say("lobby", "hello")
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst"}, nil, 201)
	alice.MustDo("POST", "/api/rooms/lobby/read", map[string]string{"id": hello.ID}, nil, 200)
	alice.MustDo("POST", "/api/conversations/bob/read", map[string]string{"id": hello.ID}, nil, 200)
	bob.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, 204)
	bob.Join("lobby")
	carol.Join("lobby") // three members: large
	check(aliceS.Until(func(f chattest.Frame) bool { return f.Kind == "members" }))
	marker := alice.Say("lobby", "marker")
	check(aliceS.Until(func(f chattest.Frame) bool { return f.ID == marker.ID }))

	bad := alice.Stream("not-an-id")
	check(bad.Until(func(f chattest.Frame) bool { return f.Kind == "ready" }))
	bad.Close()

	srv.Close() // graceful: the open streams are told to reconnect
	frames := aliceS.Ended()
	check(frames)
	if len(frames) == 0 || frames[len(frames)-1].Kind != "shutdown" || frames[len(frames)-1].Retry != "1000" {
		t.Errorf("stream ended with %s, want shutdown with retry 1000", chattest.Kinds(frames))
	}
	for kind := range schemas {
		if !seen[kind] {
			t.Errorf("no %s event was produced to check its schema", kind)
		}
	}
}

package http_test

import (
	"context"
	"fmt"
	"io"
	nethttp "net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// consoleClient signs in to the console with key, as a browser does (the
// sign-in form's token, then the session cookie).
func consoleClient(t *testing.T, base, key string) *nethttp.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &nethttp.Client{Jar: jar}
	resp, err := c.Get(base + "/sign-in")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, _ := url.Parse(base + "/sign-in")
	token := ""
	for _, ck := range jar.Cookies(u) {
		if ck.Name == "ledger_sign_in" {
			token = ck.Value
		}
	}
	if token == "" {
		t.Fatal("the sign-in page set no form token")
	}
	resp, err = c.PostForm(base+"/sign-in", url.Values{"csrf": {token}, "api_key": {key}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/customers" {
		t.Fatalf("sign-in: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	return c
}

// Every export path runs under the export time limit, not the request
// limit: each format by ?format= and by Accept, the audit log's CSV and
// NDJSON, and the console's export links. With the read model's table
// locked for longer than the request limit (a tiny one here), every export
// waits and then answers the whole file; a request limited like any other
// request would answer 503 (or abort) once the request limit passed.
func TestEveryExportRunsUnderTheExportLimit(t *testing.T) {
	const requestLimit = time.Second
	b := setup(t, setupOpts{requestTimeout: requestLimit, exportTimeout: 5 * time.Minute})
	cust := b.createCustomer(t, "Outlast")
	// Wait for the read models the exports read.
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := b.admin.do("GET", "/v1/customers?q=Outlast", nil)
		a := b.admin.do("GET", "/v1/audit?limit=1&customer_id="+cust, nil)
		if r.status == 200 && strings.Contains(string(r.body), cust) && a.status == 200 && strings.Contains(string(a.body), cust) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the read models did not catch up: %d %s / %d %s", r.status, r.body, a.status, a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	console := consoleClient(t, b.base, b.admin.key)

	type exportCase struct {
		name, path, accept string
		console            bool
		// want is what the complete file holds (text formats; the zipped
		// ones are checked for their end of central directory).
		want string
	}
	api := func(path, accept, want string) exportCase {
		return exportCase{name: path + " " + accept, path: path, accept: accept, want: want}
	}
	customers := []exportCase{
		api("/v1/customers?format=csv", "", cust),
		api("/v1/customers?format=xlsx", "", ""),
		api("/v1/customers?format=ods", "", ""),
		api("/v1/customers?format=vcf", "", cust),
		api("/v1/customers?format=html", "", cust),
		api("/v1/customers", "text/csv", cust),
		api("/v1/customers", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ""),
		api("/v1/customers", "application/vnd.oasis.opendocument.spreadsheet", ""),
		api("/v1/customers", "text/vcard", cust),
		api("/v1/customers", "text/html", cust),
	}
	for _, f := range []string{"csv", "xlsx", "ods", "vcf", "html"} {
		want := cust
		if f == "xlsx" || f == "ods" {
			want = ""
		}
		customers = append(customers, exportCase{name: "console " + f, path: "/customers/export?format=" + f, console: true, want: want})
	}
	audit := []exportCase{
		api("/v1/audit", "text/csv", cust),
		api("/v1/audit", "application/x-ndjson", cust),
		{name: "console audit csv", path: "/audit/export?format=csv", console: true, want: cust},
		{name: "console audit ndjson", path: "/audit/export?format=ndjson", console: true, want: cust},
	}

	type result struct {
		status int
		body   string
		err    error
	}
	run := func(c exportCase) result {
		req, _ := nethttp.NewRequest("GET", b.base+c.path, nil)
		// A new connection each: the client retries a GET that failed on
		// a reused one, which would hide a request cut off.
		client := &nethttp.Client{Transport: &nethttp.Transport{DisableKeepAlives: true}}
		if c.console {
			client.Jar = console.Jar
		} else {
			req.Header.Set("Authorization", "Bearer "+b.admin.key)
		}
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return result{status: resp.StatusCode, body: string(body), err: err}
	}

	// Rounds of a few at a time, fewer than the server's connections: the
	// blocked exports each hold one.
	var rounds [][]exportCase
	for _, group := range [][]exportCase{customers, audit} {
		for len(group) > 0 {
			n := min(len(group), 6)
			rounds = append(rounds, group[:n])
			group = group[n:]
		}
	}
	ctx := context.Background()
	for _, round := range rounds {
		table := "customer_list"
		if strings.Contains(round[0].path, "audit") {
			table = "audit_log"
		}
		locker, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := locker.Exec(ctx, `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
			t.Fatal(err)
		}
		results := make([]chan result, len(round))
		for i, c := range round {
			results[i] = make(chan result, 1)
			go func() { results[i] <- run(c) }()
		}
		// Every export is waiting for the lock...
		waitFor(t, 30*time.Second, func() bool {
			var n int
			err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%`+table+`%'`).Scan(&n)
			return err == nil && n >= len(round)
		})
		// ...and stays waiting past the request limit.
		time.Sleep(requestLimit + requestLimit/2)
		if err := locker.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		for i, c := range round {
			r := <-results[i]
			switch {
			case r.err != nil:
				t.Errorf("%s: %v after %d bytes (status %d): cut off", c.name, r.err, len(r.body), r.status)
			case r.status != 200:
				t.Errorf("%s: %d %.200s", c.name, r.status, r.body)
			case c.want != "" && !strings.Contains(r.body, c.want):
				t.Errorf("%s: the export lacks %s: %.300s", c.name, c.want, r.body)
			case c.want == "" && !strings.Contains(r.body[max(0, len(r.body)-200):], "PK\x05\x06"):
				t.Errorf("%s: the file does not end as a zip ends (%d bytes)", c.name, len(r.body))
			}
		}
	}
}

// An import runs under the import time limit, through the API and through
// the console: with the claims table locked for longer than the request
// limit, the import waits and then imports every row.
func TestImportRunsUnderTheImportLimit(t *testing.T) {
	const requestLimit = time.Second
	b := setup(t, setupOpts{requestTimeout: requestLimit})
	console := consoleClient(t, b.base, b.admin.key)
	page, err := console.Get(b.base + "/import")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(html)
	if m == nil {
		t.Fatalf("no CSRF token on the import page: %.300s", html)
	}
	csrf := string(m[1])
	file := func(prefix string) string {
		var sb strings.Builder
		sb.WriteString("First Name,Last Name,Email,Phone Number,Team\n")
		for i := range 1500 {
			fmt.Fprintf(&sb, "%s%d,Client,%s%d@client.example,,\n", prefix, i, prefix, i)
		}
		return sb.String()
	}
	type result struct {
		status int
		body   string
		err    error
	}
	fresh := func() *nethttp.Client {
		return &nethttp.Client{Transport: &nethttp.Transport{DisableKeepAlives: true}, Jar: console.Jar}
	}
	for _, tc := range []struct {
		name string
		send func() (*nethttp.Response, error)
		want string
	}{
		{"API", func() (*nethttp.Response, error) {
			req, _ := nethttp.NewRequest("POST", b.base+"/v1/clients/import", strings.NewReader(file("api")))
			req.Header.Set("Authorization", "Bearer "+b.admin.key)
			req.Header.Set("Content-Type", "text/csv")
			return fresh().Do(req)
		}, `"created":1500`},
		{"console", func() (*nethttp.Response, error) {
			return fresh().PostForm(b.base+"/import", url.Values{"csrf": {csrf}, "mode": {"import"}, "csv": {file("console")}})
		}, "Import done."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			locker, err := b.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer locker.Rollback(ctx) //nolint:errcheck
			if _, err := locker.Exec(ctx, `LOCK TABLE unique_claims IN ACCESS EXCLUSIVE MODE`); err != nil {
				t.Fatal(err)
			}
			done := make(chan result, 1)
			go func() {
				resp, err := tc.send()
				if err != nil {
					done <- result{err: err}
					return
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				done <- result{status: resp.StatusCode, body: string(body), err: err}
			}()
			waitFor(t, 30*time.Second, func() bool {
				var n int
				err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%unique_claims%'`).Scan(&n)
				return err == nil && n > 0
			})
			time.Sleep(requestLimit + requestLimit/2)
			if err := locker.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil || r.status != 200 || !strings.Contains(r.body, tc.want) {
				t.Fatalf("import past the request limit: %d %v: %.400s", r.status, r.err, r.body)
			}
		})
	}
}

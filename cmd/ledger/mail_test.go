package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assignment-ledger/ledger/internal/testdb"
)

// What `make run` does for e-mail: `ledger serve` with LEDGER_SMTP_URL on
// `ledger mailsink`, whose .eml files show the invitation.
func TestServeEmailsAnInvitationIntoTheMailsink(t *testing.T) {
	t.Parallel()
	dsn := testdb.NewURL(t)
	dir := filepath.Join(t.TempDir(), "mail")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sinkAddr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sinkEnv, _, sinkErr := testEnv(nil)
	sinkExit := make(chan int, 1)
	go func() { sinkExit <- run(ctx, sinkEnv, []string{"mailsink", "--addr", sinkAddr, "--dir", dir}) }()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", sinkAddr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailsink did not start: %s", sinkErr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	vars := map[string]string{"DATABASE_URL": dsn, "LEDGER_ADDR": "127.0.0.1:0",
		"LEDGER_SMTP_URL": "smtp://" + sinkAddr, "LEDGER_MAIL_FROM": "Acme <ledger@acme.example>", "LEDGER_KEK": testdb.KEK}
	bootEnv, bootOut, bootErr := testEnv(vars)
	if code := run(ctx, bootEnv, []string{"bootstrap", "--tenant", "Acme", "--admin-name", "Ann", "--admin-email", "ann@acme.example"}); code != 0 {
		t.Fatalf("bootstrap: %d %s", code, bootErr.String())
	}
	var boot struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(bootOut.String()), &boot); err != nil {
		t.Fatal(err)
	}

	base, exit := startServe(ctx, t, vars)
	post := func(path, body string) map[string]any {
		t.Helper()
		req, _ := nethttp.NewRequest("POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+boot.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := nethttp.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 201 || json.Unmarshal(raw, &m) != nil {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
		}
		return m
	}
	bob := post("/v1/users", `{"name":"Bob Baker","email":"bob@acme.example","role":"member"}`)["id"].(string)
	post("/v1/clients/invitations", `{"first_name":"Carla","email":"carla@client.example","team":["`+bob+`"],"send_email":true}`)

	var eml []byte
	for deadline := time.Now().Add(15 * time.Second); eml == nil; {
		files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
		if len(files) == 1 {
			if eml, err = os.ReadFile(files[0]); err != nil {
				t.Fatal(err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no .eml in %s (%d files); mailsink said %s", dir, len(files), sinkErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"To: \"Carla\" <carla@client.example>", "From: \"Acme\" <ledger@acme.example>", "Bob Baker <bob@acme.example>"} {
		if !strings.Contains(string(eml), want) {
			t.Errorf("the .eml lacks %q:\n%s", want, eml)
		}
	}

	cancel()
	for name, ch := range map[string]<-chan int{"serve": exit, "mailsink": sinkExit} {
		select {
		case code := <-ch:
			if code != 0 {
				t.Errorf("%s exited %d", name, code)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop", name)
		}
	}
}

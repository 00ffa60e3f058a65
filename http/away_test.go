package http_test

import (
	"testing"
	"time"
)

// TestUserAwayAndNotifyByEmail: PATCH /v1/users/{id} takes away_until
// (the user or an admin) and notify_by_email (the user only); users show
// both and customers, counted from the my_clients read model; UserUpdated
// carries only the changed fields.
func TestUserAwayAndNotifyByEmail(t *testing.T) {
	b := setup(t)
	mia := b.createUser(t, "Mia Member", "member")
	max := b.createUser(t, "Max Member", "member")
	auditor := b.createUser(t, "Aldo Auditor", "auditor")

	u := b.admin.must(200, "GET", "/v1/users/"+mia.userID, nil).json(t)
	if u["away_until"] != nil || u["notify_by_email"] != false || u["customers"] != float64(0) {
		t.Fatalf("a new user: %v", u)
	}

	// The user sets their own away time and e-mail choice.
	back := time.Date(2030, 5, 6, 7, 0, 0, 0, time.UTC)
	r := mia.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": back.Format(time.RFC3339), "notify_by_email": true})
	u = r.json(t)
	if u["away_until"] != "2030-05-06T07:00:00Z" || u["notify_by_email"] != true {
		t.Fatalf("after PATCH: %v", u)
	}
	// An offset is kept as the same instant, shown in UTC.
	u = mia.must(200, "PATCH", "/v1/users/"+mia.userID, map[string]any{"away_until": "2030-05-06T09:00:00+02:00"}).json(t)
	if u["away_until"] != "2030-05-06T07:00:00Z" {
		t.Fatalf("same instant: %v", u)
	}
	// An admin may set anyone's away time, but not their e-mail choice.
	b.admin.must(200, "PATCH", "/v1/users/"+max.userID, map[string]any{"away_until": back.Format(time.RFC3339)})
	if got := b.admin.do("PATCH", "/v1/users/"+max.userID, map[string]any{"notify_by_email": true}); got.status != 403 {
		t.Fatalf("admin sets another's notify_by_email: %d %s", got.status, got.body)
	}
	// A member may not set another's away time, nor their own name.
	if got := mia.do("PATCH", "/v1/users/"+max.userID, map[string]any{"away_until": nil}); got.status != 403 {
		t.Fatalf("member sets another's away_until: %d %s", got.status, got.body)
	}
	if got := mia.do("PATCH", "/v1/users/me", map[string]any{"name": "Mia M"}); got.status != 403 {
		t.Fatalf("member renames themselves: %d %s", got.status, got.body)
	}
	if got := auditor.do("PATCH", "/v1/users/me", map[string]any{"away_until": nil}); got.status != 403 {
		t.Fatalf("auditor changes: %d %s", got.status, got.body)
	}
	// Bad input changes nothing.
	before := b.countEvents(t)
	for _, bad := range []map[string]any{{"away_until": "tomorrow"}, {"away_until": 5}, {"notify_by_email": "yes"}} {
		if got := mia.do("PATCH", "/v1/users/me", bad); got.status != 400 {
			t.Fatalf("%v: %d %s", bad, got.status, got.body)
		}
	}
	if b.countEvents(t) != before {
		t.Fatal("a refused PATCH wrote events")
	}

	// null brings the user back.
	cleared := mia.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": nil})
	u = cleared.json(t)
	if u["away_until"] != nil || u["notify_by_email"] != true {
		t.Fatalf("back: %v", u)
	}
	// The same again changes nothing.
	before = b.countEvents(t)
	mia.must(200, "PATCH", "/v1/users/me", map[string]any{"away_until": nil, "notify_by_email": true})
	if b.countEvents(t) != before {
		t.Fatal("an unchanged PATCH wrote an event")
	}

	// The events carry the changed fields only.
	hist := b.admin.must(200, "GET", "/v1/audit?type=UserUpdated&limit=100", nil,
		hdr{"X-Min-Position": cleared.header.Get("X-Ledger-Position")}).json(t)["items"].([]any)
	var datas []map[string]any
	for _, it := range hist {
		item := it.(map[string]any)
		d := item["data"].(map[string]any)
		if d["user_id"] == mia.userID {
			datas = append(datas, d)
		}
	}
	if len(datas) != 2 || datas[0]["away_cleared"] != true && datas[1]["away_cleared"] != true {
		t.Fatalf("Mia's UserUpdated events: %v", datas)
	}
	for _, d := range datas {
		if _, named := d["name"]; named {
			t.Fatalf("an unchanged name in the event: %v", d)
		}
	}

	// customers counts what the user serves.
	c1, c2 := b.createCustomer(t, "Cora"), b.createCustomer(t, "Cole")
	b.admin.must(200, "POST", "/v1/customers/"+c1+"/assignees", map[string]string{"user_id": mia.userID})
	r = b.admin.must(200, "POST", "/v1/customers/"+c2+"/assignees", map[string]string{"user_id": mia.userID})
	pos := hdr{"X-Min-Position": r.header.Get("X-Ledger-Position")}
	if u := b.admin.must(200, "GET", "/v1/users/"+mia.userID, nil, pos).json(t); u["customers"] != float64(2) {
		t.Fatalf("customers after two assignments: %v", u)
	}
	list := b.admin.must(200, "GET", "/v1/users?q=Mia", nil, pos).json(t)["items"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["customers"] != float64(2) {
		t.Fatalf("list: %v", list)
	}
}

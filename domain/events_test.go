package domain_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

var prof = domain.Profile{FirstName: "Ann", LastName: "Lee", Email: "ann@example.com", Phone: "+1", ExternalID: "x1"}

const profJSON = `"first_name":"Ann","last_name":"Lee","email":"ann@example.com","phone":"+1","external_id":"x1"`

// eventJSON is the public contract: one event of each type and the exact
// data the event store keeps for it.
var eventJSON = []struct {
	event domain.Event
	json  string
}{
	{domain.TenantCreated{TenantID: "t1", Name: "Acme"}, `{"tenant_id":"t1","name":"Acme"}`},
	{domain.UserCreated{UserID: "u1", Name: "Bo", Email: "bo@example.com", Role: domain.RoleAdmin},
		`{"user_id":"u1","name":"Bo","email":"bo@example.com","role":"admin"}`},
	{domain.UserDeactivated{UserID: "u1", Name: "Bo", Email: "bo@example.com", Role: domain.RoleMember, TransferTo: "u2"},
		`{"user_id":"u1","name":"Bo","email":"bo@example.com","role":"member","transfer_to":"u2"}`},
	{domain.UserUpdated{UserID: "u1", Role: domain.RoleMember}, `{"user_id":"u1","role":"member"}`},
	{domain.ApiKeyIssued{UserID: "u1", KeyID: "k1"}, `{"user_id":"u1","key_id":"k1"}`},
	{domain.PolicyChanged{Policy: domain.Policy{MaxAssignees: ptr(3), RequireAssignee: true, RequireLead: true, MembersCanSelfAssign: false}},
		`{"max_assignees":3,"require_assignee":true,"require_lead":true,"members_can_self_assign":false,"max_customers_per_user":null}`},
	{domain.CustomerRegistered{CustomerID: "c1", Profile: prof}, `{"customer_id":"c1",` + profJSON + `}`},
	{domain.ClientInvited{CustomerID: "c1", Profile: prof}, `{"customer_id":"c1",` + profJSON + `}`},
	{domain.CustomerUpdated{CustomerID: "c1", Profile: prof}, `{"customer_id":"c1",` + profJSON + `}`},
	{domain.InvitationAccepted{CustomerID: "c1"}, `{"customer_id":"c1"}`},
	{domain.CustomerBlocked{CustomerID: "c1"}, `{"customer_id":"c1"}`},
	{domain.CustomerUnblocked{CustomerID: "c1"}, `{"customer_id":"c1"}`},
	{domain.UserAssigned{CustomerID: "c1", UserID: "u1", Lead: true}, `{"customer_id":"c1","user_id":"u1","lead":true}`},
	{domain.UserUnassigned{CustomerID: "c1", UserID: "u1"}, `{"customer_id":"c1","user_id":"u1"}`},
	{domain.TeamLeadChanged{CustomerID: "c1", UserID: "u2", PreviousUserID: "u1"},
		`{"customer_id":"c1","user_id":"u2","previous_user_id":"u1"}`},
	{domain.TeamMemberReplaced{CustomerID: "c1", UserID: "u1", WithUserID: "u2", Lead: true},
		`{"customer_id":"c1","user_id":"u1","with_user_id":"u2","lead":true}`},
	{domain.InvitationEmailed{CustomerID: "c1", MessageID: "m1", Outcome: "sent"}, `{"customer_id":"c1","message_id":"m1","outcome":"sent"}`},
	{domain.CustomerMessaged{CustomerID: "c1", MessageID: "m1"}, `{"customer_id":"c1","message_id":"m1"}`},
	{domain.CustomerMessaged{CustomerID: "c1", MessageID: "m1", EmailID: "e1", Outcome: "failed"}, `{"customer_id":"c1","message_id":"m1","email_id":"e1","outcome":"failed"}`},
}

func TestEncodeEventJSON(t *testing.T) {
	for _, tc := range eventJSON {
		t.Run(tc.event.EventType(), func(t *testing.T) {
			typ, v, data, err := domain.EncodeEvent(tc.event)
			wantErr(t, err, "")
			if typ != tc.event.EventType() || v != 1 {
				t.Errorf("type, version = %q, %d", typ, v)
			}
			if string(data) != tc.json {
				t.Errorf("data\n got %s\nwant %s", data, tc.json)
			}
			back, err := domain.DecodeEvent(typ, v, data)
			wantErr(t, err, "")
			if !reflect.DeepEqual(back, tc.event) {
				t.Errorf("round trip: got %#v, want %#v", back, tc.event)
			}
		})
	}
}

func TestEncodeEventOptionalKeys(t *testing.T) {
	for _, tc := range []struct {
		event domain.Event
		json  string
	}{
		// No transfer: the key is left out rather than naming nobody.
		{domain.UserDeactivated{UserID: "u1", Name: "Bo", Email: "b@x.io", Role: domain.RoleMember},
			`{"user_id":"u1","name":"Bo","email":"b@x.io","role":"member"}`},
		// No previous lead: the key stays, empty.
		{domain.TeamLeadChanged{CustomerID: "c1", UserID: "u2"}, `{"customer_id":"c1","user_id":"u2","previous_user_id":""}`},
		{domain.PolicyChanged{Policy: domain.DefaultPolicy()},
			`{"max_assignees":null,"require_assignee":false,"require_lead":false,"members_can_self_assign":true,"members_see":"all","max_customers_per_user":null}`},
		// Stored before members_see existed: no key (Tenant.Apply reads
		// it as "all").
		{domain.PolicyChanged{Policy: domain.Policy{MembersCanSelfAssign: true}},
			`{"max_assignees":null,"require_assignee":false,"require_lead":false,"members_can_self_assign":true,"max_customers_per_user":null}`},
		{domain.UserAssigned{CustomerID: "c1", UserID: "u1"}, `{"customer_id":"c1","user_id":"u1","lead":false}`},
		// An admin's opt-in: absent unless it changes, and an opt-out
		// keeps the key (false), so it is told from no change.
		{domain.UserUpdated{UserID: "u1", CheckpointEmail: boolPtr(true)}, `{"user_id":"u1","checkpoint_email":true}`},
		{domain.UserUpdated{UserID: "u1", CheckpointEmail: boolPtr(false)}, `{"user_id":"u1","checkpoint_email":false}`},
		{domain.UserUpdated{UserID: "u1", Name: "Bo"}, `{"user_id":"u1","name":"Bo"}`},
	} {
		_, _, data, err := domain.EncodeEvent(tc.event)
		wantErr(t, err, "")
		if string(data) != tc.json {
			t.Errorf("%s\n got %s\nwant %s", tc.event.EventType(), data, tc.json)
		}
	}
}

func TestEveryEventTypeIsCovered(t *testing.T) {
	types := []string{
		domain.TypeTenantCreated, domain.TypeUserCreated, domain.TypeUserDeactivated, domain.TypeApiKeyIssued,
		domain.TypePolicyChanged, domain.TypeCustomerRegistered, domain.TypeClientInvited, domain.TypeCustomerUpdated,
		domain.TypeInvitationAccepted, domain.TypeCustomerBlocked, domain.TypeCustomerUnblocked, domain.TypeUserAssigned,
		domain.TypeUserUnassigned, domain.TypeTeamLeadChanged, domain.TypeTeamMemberReplaced, domain.TypeInvitationEmailed,
		domain.TypeCustomerMessaged,
	}
	covered := map[string]bool{}
	for _, tc := range eventJSON {
		covered[tc.event.EventType()] = true
	}
	for _, typ := range types {
		if !covered[typ] {
			t.Errorf("no JSON contract case for %s", typ)
		}
		if _, err := domain.DecodeEvent(typ, domain.SchemaVersion, []byte(`{}`)); err != nil {
			t.Errorf("decode %s: %v", typ, err)
		}
	}
}

func TestDecodeEventToleratesUnknownFields(t *testing.T) {
	e, err := domain.DecodeEvent(domain.TypeUserAssigned, 1,
		[]byte(`{"customer_id":"c1","user_id":"u1","lead":true,"reason":"added later","extra":{"a":[1]}}`))
	wantErr(t, err, "")
	if e != (domain.UserAssigned{CustomerID: "c1", UserID: "u1", Lead: true}) {
		t.Fatalf("got %#v", e)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     string
		version int
		data    string
		unknown bool
	}{
		{"unknown type", "UserPromoted", 1, `{}`, true},
		{"future version", domain.TypeUserAssigned, 2, `{}`, true},
		{"version zero", domain.TypeUserAssigned, 0, `{}`, true},
		{"bad json", domain.TypeUserAssigned, 1, `{"lead":"yes"}`, false},
		{"empty data", domain.TypeUserAssigned, 1, ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := domain.DecodeEvent(tc.typ, tc.version, []byte(tc.data))
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, domain.ErrUnknownEvent); got != tc.unknown {
				t.Fatalf("errors.Is(ErrUnknownEvent) = %v: %v", got, err)
			}
		})
	}
}

type strayEvent struct{}

func (strayEvent) EventType() string { return "Stray" }

func TestEncodeEventRefusesUnknown(t *testing.T) {
	if _, _, _, err := domain.EncodeEvent(strayEvent{}); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("stray event: %v", err)
	}
	if _, _, _, err := domain.EncodeEvent(nil); err == nil {
		t.Fatal("nil event encoded")
	}
}

func TestCustomerIDOfAndUserIDsOf(t *testing.T) {
	for _, tc := range []struct {
		event    domain.Event
		customer string
		users    []string
	}{
		{domain.TenantCreated{TenantID: "t1"}, "", nil},
		{domain.PolicyChanged{}, "", nil},
		{domain.UserCreated{UserID: "u1"}, "", []string{"u1"}},
		{domain.UserDeactivated{UserID: "u1"}, "", []string{"u1"}},
		{domain.UserDeactivated{UserID: "u1", TransferTo: "u2"}, "", []string{"u1", "u2"}},
		{domain.ApiKeyIssued{UserID: "u1", KeyID: "k"}, "", []string{"u1"}},
		{domain.CustomerRegistered{CustomerID: "c1"}, "c1", nil},
		{domain.ClientInvited{CustomerID: "c1"}, "c1", nil},
		{domain.CustomerUpdated{CustomerID: "c1"}, "c1", nil},
		{domain.InvitationAccepted{CustomerID: "c1"}, "c1", nil},
		{domain.CustomerBlocked{CustomerID: "c1"}, "c1", nil},
		{domain.CustomerUnblocked{CustomerID: "c1"}, "c1", nil},
		{domain.UserAssigned{CustomerID: "c1", UserID: "u1"}, "c1", []string{"u1"}},
		{domain.UserUnassigned{CustomerID: "c1", UserID: "u1"}, "c1", []string{"u1"}},
		{domain.TeamLeadChanged{CustomerID: "c1", UserID: "u2"}, "c1", []string{"u2"}},
		{domain.TeamLeadChanged{CustomerID: "c1", UserID: "u2", PreviousUserID: "u1"}, "c1", []string{"u2", "u1"}},
		{domain.TeamMemberReplaced{CustomerID: "c1", UserID: "u1", WithUserID: "u2"}, "c1", []string{"u1", "u2"}},
	} {
		id, ok := domain.CustomerIDOf(tc.event)
		if id != tc.customer || ok != (tc.customer != "") {
			t.Errorf("CustomerIDOf(%#v) = %q, %v", tc.event, id, ok)
		}
		if got := domain.UserIDsOf(tc.event); !reflect.DeepEqual(got, tc.users) {
			t.Errorf("UserIDsOf(%#v) = %v, want %v", tc.event, got, tc.users)
		}
	}
}

func TestFieldNamesOfAnEventType(t *testing.T) {
	got, ok := domain.FieldNames(domain.TypeCustomerRegistered)
	want := []string{"customer_id", "first_name", "last_name", "email", "phone", "external_id", "title", "erased"}
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("CustomerRegistered: %v %v, want %v", got, ok, want)
	}
	if got, ok := domain.FieldNames(domain.TypeFollowUpScheduled); !ok || !slices.Equal(got, []string{"follow_up_id", "customer_id", "due_at", "note", "to", "created_by"}) {
		t.Fatalf("FollowUpScheduled: %v %v", got, ok)
	}
	if _, ok := domain.FieldNames("NoSuchEvent"); ok {
		t.Fatal("an unknown type has fields")
	}
}

package projections

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/assignment-ledger/ledger/domain"
)

// The assignees column is written by hand; it must hold what encoding/json
// would write, also for a user ID that needs escaping.
func TestAssigneesJSONIsWhatEncodingJSONWrites(t *testing.T) {
	at := time.Date(2024, 3, 1, 9, 0, 2, 120730000, time.FixedZone("x", 3600))
	team := domain.Team{{UserID: "605d7fad-b3e9-4388-a9b8-c95802fa1406", Lead: true, AssignedAt: at},
		{UserID: "odd \"id\" \\ <&> \u2028 é \x01", AssignedAt: at.Add(time.Nanosecond)}}
	type entry struct {
		UserID     string    `json:"user_id"`
		Lead       bool      `json:"lead"`
		AssignedAt time.Time `json:"assigned_at"`
	}
	var want []entry
	for _, m := range team {
		want = append(want, entry{m.UserID, m.Lead, m.AssignedAt.UTC()})
	}
	wantDoc, _ := json.Marshal(want)
	for _, tc := range []struct {
		team domain.Team
		want string
	}{{team, string(wantDoc)}, {nil, "[]"}} {
		got := assigneesJSON(tc.team)
		var g, w any
		if err := json.Unmarshal([]byte(got), &g); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		_ = json.Unmarshal([]byte(tc.want), &w)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("assigneesJSON = %s, want %s", got, tc.want)
		}
	}
}

// uid's fast path parses the canonical form exactly as uuid.Parse does, and
// leaves every other form to it.
func TestCanonicalUUID(t *testing.T) {
	for _, s := range []string{"605d7fad-b3e9-4388-a9b8-c95802fa1406", "00000000-0000-0000-0000-000000000000",
		"FFFFFFFF-ABCD-4388-A9B8-C95802FA1406", "{605d7fad-b3e9-4388-a9b8-c95802fa1406}", "605d7fadb3e94388a9b8c95802fa1406",
		"605d7fad-b3e9-4388-a9b8-c95802fa140g", "605d7fad-b3e9-4388-a9b8c-95802fa1406", ""} {
		want, werr := uuid.Parse(s)
		got, ok := canonicalUUID(s)
		if ok && (werr != nil || got != [16]byte(want)) {
			t.Errorf("canonicalUUID(%q) = %x, uuid.Parse = %x, %v", s, got, want, werr)
		}
		if !ok && len(s) == 36 && werr == nil && s[8] == '-' {
			t.Errorf("canonicalUUID(%q) refused a canonical UUID", s)
		}
	}
}

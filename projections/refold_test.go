package projections

import (
	"encoding/json"
	"testing"
)

// The fast path and encoding/json must agree on what a string is.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "Ann O'Neil", "a\"b", `back\slash`, "tab\there", "nul\x00", "é", "<b>&", "\xff", "日本"} {
		var back string
		if err := json.Unmarshal(appendJSONString(nil, s), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
}

package http

import (
	"encoding/json"
	"time"
)

// nullableTime tells a field left out (Set false) from an explicit null;
// a value must be an RFC 3339 time (away_until).
type nullableTime struct {
	Set   bool
	Value *time.Time
}

func (n *nullableTime) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return badRequest("invalid_input", "away_until", "away_until must be an RFC 3339 time or null")
	}
	t, err := parseTime(s)
	if err != nil {
		return badRequest("invalid_input", "away_until", "away_until must be an RFC 3339 time or null")
	}
	n.Value = &t
	return nil
}

func (*nullableTime) jsonKind() string { return "an RFC 3339 time or null" }

// nullableCount is max_customers_per_user: left out (Set false), null (no
// limit) or an integer.
type nullableCount struct {
	Set   bool
	Value *int
}

func (n *nullableCount) UnmarshalJSON(b []byte) error {
	n.Set = true
	if string(b) == "null" {
		n.Value = nil
		return nil
	}
	var v int
	if err := json.Unmarshal(b, &v); err != nil {
		return badRequest("invalid_input", "max_customers_per_user", "max_customers_per_user must be an integer or null")
	}
	n.Value = &v
	return nil
}

func (*nullableCount) jsonKind() string { return "an integer or null" }

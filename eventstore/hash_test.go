package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

// slowCanonical is canonicalJSON without its fast path: the definition
// of the canonical form.
func slowCanonical(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func TestCanonicalJSONFastPathIsExact(t *testing.T) {
	for _, c := range []struct {
		in   string
		fast bool
	}{
		{`{"customer_id":"7d3c","lead":false,"user_id":"a1"}`, true},
		{`{"a":[1,-2.5e+3,0,{"c":true,"b":null}],"d":"x y"}`, true},
		{`{"user_id": "a1", "lead": false, "customer_id": "7d3c"}`, true}, // as jsonb gives it back
		{" {\"a\" :\t[ 1 ,\n2 ] }\r\n", true},
		{`{}`, true},
		{`[]`, true},
		{`"plain"`, true},
		{`-0.0E-0`, true},
		{`{"b":1,"a":2}`, true},
		{`{"a!":1,"a":2}`, true}, // "a" sorts before "a!"
		{`{"n":"Müller"}`, true},
		{`{"n":"DEL\u007f"}`, false},
		{`{"a":"1","a":"2"}`, false}, // repeated key: the last one wins
		{`{"a":1}{"b":2}`, false},    // trailing data: the decoder stops after one value
		{`{"n":"a\u0041"}`, false},   // an escape
		{`{"n":"<b>&"}`, false},      // HTML characters encoding/json escapes
		{"{\"n\":\"\u2028\"}", false},
		{"{\"n\":\"\xff\"}", false}, // not UTF-8
		{`{"n":01}`, false},
		{`{"n":1.}`, false},
		{`{"n":1e}`, false},
		{`{"n":tru}`, false},
		{`{"n":1`, false},
		{`{"n"`, false},
		{``, false},
		{`[1,]`, false},
	} {
		if _, got := fastCanonical([]byte(c.in)); got != c.fast {
			t.Errorf("fastCanonical(%s) took the fast path: %v, want %v", c.in, got, c.fast)
		}
		checkFastPath(t, []byte(c.in))
	}
}

// checkFastPath fails when the fast path takes b and the definition
// disagrees.
func checkFastPath(t *testing.T, b []byte) {
	t.Helper()
	got, ok := fastCanonical(b)
	if !ok {
		return
	}
	want, err := slowCanonical(b)
	if err != nil {
		t.Fatalf("fastCanonical(%q) = %q, but the decoder refuses it: %v", b, got, err)
	}
	if !bytes.Equal(want, got) {
		t.Fatalf("fastCanonical(%q) = %q, want %q", b, got, want)
	}
}

func TestCanonicalJSONOfEvents(t *testing.T) {
	// What the service writes: a struct's fields are in declaration
	// order, which need not be sorted, so both paths are taken.
	type assigned struct {
		UserID     string `json:"user_id"`
		CustomerID string `json:"customer_id"`
		Lead       bool   `json:"lead"`
	}
	for _, v := range []any{
		assigned{UserID: "u", CustomerID: "c"},
		map[string]any{"customer_id": "c", "lead": true, "user_id": "u", "n": 12.5},
		map[string]any{"name": "Zoë <z@example.com>"},
		map[string]any{"note": "line\nbreak", "nested": map[string]any{"z": 1, "a": []any{"x", 2}}},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := canonicalJSON(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := slowCanonical(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("canonicalJSON(%s) = %s, want %s", b, got, want)
		}
	}
}

func TestCanonicalJSONDeepNesting(t *testing.T) {
	deep := bytes.Repeat([]byte("["), 1000)
	deep = append(deep, bytes.Repeat([]byte("]"), 1000)...)
	if _, ok := fastCanonical(deep); ok {
		t.Fatal("1000 levels took the fast path")
	}
	got, err := canonicalJSON(deep)
	if err != nil || !bytes.Equal(got, deep) {
		t.Fatalf("canonicalJSON(1000 levels) = %.20s..., %v", got, err)
	}
	shallow := fmt.Sprintf("%s1%s", bytes.Repeat([]byte("["), maxCanonicalDepth), bytes.Repeat([]byte("]"), maxCanonicalDepth))
	checkFastPath(t, []byte(shallow))
}

func FuzzCanonicalJSONFastPath(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[true,null,"x"]}`, `{"b":1,"a":2}`, `[-0.5e10,"<"]`, `{"a!":1,"a":2}`, `"\u00e9"`, ` {"b" : [1, 2], "a": "é"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkFastPath(t, b) })
}

// BenchmarkCanonicalJSON: an UserAssigned event's data and metadata, by
// the fast path and by the definition.
func BenchmarkCanonicalJSON(b *testing.B) {
	docs := [][]byte{
		[]byte(`{"customer_id":"0e5c7a52-5b1e-4a4e-9a57-8e0f3f1c2d44","user_id":"4b9f3c1e-2d7a-4c55-8f6e-1a2b3c4d5e6f","lead":false}`),
		[]byte(`{"actor":{"user_id":"9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a","name":"Bench Admin"},"correlation_id":"3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f"}`),
	}
	for _, c := range []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{{"fast", canonicalJSON}, {"definition", slowCanonical}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				for _, d := range docs {
					if _, err := c.fn(d); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

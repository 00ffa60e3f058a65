package http

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestDuplicateKeyAtEveryDepth(t *testing.T) {
	for body, want := range map[string]string{
		`{"dry_run":true,"dry_run":false,"dry_run":true}`: "dry_run",
		`{"a":1,"b":{"c":1,"c":2}}`:                       "b.c",
		`{"a":[{"x":1},{"y":1,"y":1}]}`:                   "a[1].y",
		`{"dry_run":true,"dry\u005frun":false}`:           "dry_run",
		` { "a" : "}\"" , "a" : 1 } `:                     "a",
		`[[{"k":{"deep":[1,{"z":1,"z":1}]}}]]`:            "[0][0].k.deep[1].z",
		`{"filter":{"q":"a","status":"b","q":"c"}}`:       "filter.q",
	} {
		if got, dup := duplicateKey([]byte(body)); !dup || got != want {
			t.Errorf("%s: %q %v, want %q", body, got, dup, want)
		}
	}
	for _, body := range []string{
		`{}`, `[]`, `"x"`, `1`, `{"a":{"a":{"a":1}}}`, `{"a":1,"A":2}`, `{"a\"":1,"a":2}`, `[{"a":1},{"a":1}]`,
		`{"a":"\\","b":"\"a\":"}`, `{"a":[1,2,{"b":null}],"b":true,"c":-1.5e3}`,
	} {
		if got, dup := duplicateKey([]byte(body)); dup {
			t.Errorf("%s: a duplicate %q where there is none", body, got)
		}
	}
}

// The check runs on every command: a bulk body of 10,000 IDs is scanned
// without allocating per ID.
func TestDuplicateKeyAllocatesNothingPerValue(t *testing.T) {
	body := manyIDsBody(10_000)
	allocs := testing.AllocsPerRun(10, func() {
		if _, dup := duplicateKey(body); dup {
			t.Fatal("duplicate")
		}
	})
	if allocs > 10 {
		t.Fatalf("%v allocations for a body of 10,000 IDs", allocs)
	}
}

func manyIDsBody(n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "01a24e8a-2da0-71d3-a3be-38f4e03c2285"
	}
	b, _ := json.Marshal(map[string]any{"action": "add", "customer_ids": ids, "user_ids": []string{"me"}, "dry_run": false})
	return b
}

func BenchmarkDuplicateKey(b *testing.B) {
	body := manyIDsBody(10_000)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		duplicateKey(body)
	}
}

func BenchmarkDecodeBulkBody(b *testing.B) {
	body := manyIDsBody(10_000)
	type bulk struct {
		Action      string   `json:"action"`
		CustomerIDs []string `json:"customer_ids"`
		UserIDs     []string `json:"user_ids"`
		DryRun      bool     `json:"dry_run"`
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v bulk
		if err := decodeJSON(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDuplicateKey checks the scanner against encoding/json's tokenizer on
// any valid JSON: both find a repeated key, or neither does.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":"\""}]}}`, `[{"a":1},{"a":1}]`, `{"a\u0062":1,"ab":2}`, `{"x":"\\\"","y":[]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		_, got := duplicateKey(body)
		if want := tokenDuplicate(t, body); got != want {
			t.Fatalf("%s: duplicateKey %v, the tokenizer %v", body, got, want)
		}
	})
}

// tokenDuplicate is the slow, obviously right duplicate check.
func tokenDuplicate(t *testing.T, body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := func() *frame {
			if len(stack) == 0 {
				return nil
			}
			return stack[len(stack)-1]
		}()
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.isObject {
					top.wantKey = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, isObject: v == '{', wantKey: true})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if top != nil && top.isObject && top.wantKey {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.wantKey = false
				continue
			}
		}
		if top != nil && top.isObject {
			top.wantKey = true
		}
	}
}

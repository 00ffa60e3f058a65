package http

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// decodeJSON strictly decodes a JSON object into dst, a pointer to a struct
// of the request's fields. Field names match exactly (encoding/json would
// take "MAX_ASSIGNEES" for max_assignees); an unknown field is a 400 naming
// it and the fields expected, so a typo never silently does nothing; a key
// repeated in one object, at any depth, is a 400 naming it; null is
// refused where the field cannot be null (a "dry_run": null must not become
// a real write); trailing data is an error. Text PostgreSQL cannot store (a
// NUL byte, invalid UTF-8) is a 400 naming the field. Errors speak JSON,
// never Go: no struct or type names.
func decodeJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("malformed_json", "", "the body is empty; send a JSON object")
	}
	invalidUTF8 := !utf8.Valid(body)
	if invalidUTF8 {
		// encoding/json would quietly turn invalid bytes into U+FFFD. They can
		// only stand inside strings in valid JSON, so mark each as a NUL
		// escape: the field holding one is then named below.
		body = markInvalidUTF8(body)
	}
	// So would it a \u escape of half a surrogate pair, which is no
	// character either: marked the same way.
	body = markLoneSurrogates(body)
	fields := requestFields(reflect.TypeOf(dst).Elem())
	var raw map[string]json.RawMessage
	if err := strictUnmarshal(body, &raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return badRequest("malformed_json", "", "the body must be a JSON object")
		}
		return err
	}
	// A repeated key is refused before anything reads the body: encoding/json
	// keeps the last, a validating proxy in front may have judged the first.
	if key, dup := duplicateKey(body); dup {
		return badRequest("duplicate_key", key, "the key %q appears more than once in one object; send each field once", key)
	}
	if err := checkFields(raw, fields, ""); err != nil {
		return err
	}
	if err := strictUnmarshal(body, dst); err != nil {
		var in *errInput
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &in):
			return in
		case errors.As(err, &typeErr):
			name := clientPath(reflect.TypeOf(dst).Elem(), typeErr.Field)
			if f, ok := fields[name]; ok {
				return badRequest("invalid_input", name, "%s must be %s", name, f.kind)
			}
			return badRequest("invalid_input", name, "%s must be %s", name, kindOf(typeErr.Type))
		}
		return err
	}
	if field, bad := badText(reflect.ValueOf(dst).Elem(), ""); bad {
		return badRequest("invalid_input", field, "%s contains a NUL byte or invalid UTF-8", field)
	}
	if invalidUTF8 {
		return badRequest("invalid_input", "", "the body is not valid UTF-8")
	}
	return nil
}

// clientPath turns encoding/json's path of a field ("assign.weights",
// "profileBody.first_name") into the one the client wrote: the names of
// embedded structs are Go's, not the body's, so they are dropped.
func clientPath(t reflect.Type, path string) string {
	var out []string
	for _, seg := range strings.Split(path, ".") {
		for t != nil && (t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
			t = t.Elem()
		}
		var next reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := t.FieldByName(seg); ok && f.Anonymous && f.Tag.Get("json") == "" {
				t = f.Type // an embedded struct: its fields are the outer one's
				continue
			}
			for i := range t.NumField() {
				if f := t.Field(i); jsonName(f) == seg {
					next = f.Type
				}
			}
		}
		out = append(out, seg)
		t = next
	}
	return strings.Join(out, ".")
}

// jsonName is the name encoding/json gives a struct field.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	return name
}

// strictUnmarshal decodes one JSON value with no data after it.
func strictUnmarshal(body []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(dst); err != nil {
		var syntax *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		var in *errInput
		if errors.As(err, &typeErr) || errors.As(err, &in) {
			return err
		}
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if errors.As(err, &syntax) {
			msg = fmt.Sprintf("%s (at byte %d)", msg, syntax.Offset)
		}
		return badRequest("malformed_json", "", "malformed JSON: %s", msg)
	}
	if dec.More() {
		return badRequest("malformed_json", "", "unexpected data after the JSON object")
	}
	return nil
}

// checkFields refuses unknown fields and nulls where null means nothing,
// in raw and in the objects it holds for object fields (a bulk call's
// filter), naming nested fields with their path ("filter.colour").
func checkFields(raw map[string]json.RawMessage, fields map[string]jsonField, prefix string) error {
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		f, ok := fields[name]
		if !ok {
			return unknownField(prefix+name, fields)
		}
		v := bytes.TrimSpace(raw[name])
		if string(v) == "null" && !f.nullable {
			return badRequest("invalid_input", prefix+name, "%s must be %s, not null", prefix+name, f.kind)
		}
		if f.object != nil && len(v) > 0 && v[0] == '{' {
			var nested map[string]json.RawMessage
			if err := json.Unmarshal(v, &nested); err != nil {
				return badRequest("invalid_input", prefix+name, "%s must be %s", prefix+name, f.kind)
			}
			if err := checkFields(nested, requestFields(f.object), prefix+name+"."); err != nil {
				return err
			}
		}
	}
	return nil
}

func unknownField(name string, fields map[string]jsonField) error {
	expected := slices.Sorted(maps.Keys(fields))
	for _, e := range expected {
		if strings.EqualFold(e, name) {
			return badRequest("unknown_field", name, "unknown field %q (field names are case-sensitive: %q); expected %s",
				name, e, strings.Join(expected, ", "))
		}
	}
	if len(expected) == 0 {
		return badRequest("unknown_field", name, "unknown field %q; this request takes no fields", name)
	}
	return badRequest("unknown_field", name, "unknown field %q; expected %s", name, strings.Join(expected, ", "))
}

// jsonField is what a request field accepts.
type jsonField struct {
	kind     string // in words, for errors: "a string", "true or false"
	nullable bool
	// object is the struct type of an object field whose own fields are
	// checked too (nil for other fields, and for types decoding themselves).
	object reflect.Type
}

// fieldsByType caches jsonFields: the commands' hot path decodes a body per
// request.
var fieldsByType sync.Map // reflect.Type → map[string]jsonField

func requestFields(t reflect.Type) map[string]jsonField {
	if f, ok := fieldsByType.Load(t); ok {
		return f.(map[string]jsonField)
	}
	f := jsonFields(t)
	fieldsByType.Store(t, f)
	return f
}

// jsonFields lists the JSON fields of a request struct, embedded structs'
// included, as encoding/json sees them.
func jsonFields(t reflect.Type) map[string]jsonField {
	out := map[string]jsonField{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(f.Type) {
				out[k] = v
			}
			continue
		}
		out[jsonName(f)] = jsonField{kind: kindOf(f.Type), nullable: nullable(f.Type), object: objectType(f.Type)}
	}
	return out
}

// objectType is t's struct type when t is a struct or a pointer to one
// that encoding/json decodes field by field.
func objectType(t reflect.Type) reflect.Type {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil
	}
	return t
}

// nullable reports whether null means something for a field of type t (a
// pointer, or a type that decodes null itself). Slices take null as empty.
func nullable(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		return true
	}
	return reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]())
}

// kindOf names what a Go type accepts, in JSON's words.
func kindOf(t reflect.Type) string {
	if k, ok := reflect.New(t).Interface().(interface{ jsonKind() string }); ok {
		return k.jsonKind()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Pointer:
		return kindOf(t.Elem()) + " or null"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.String {
			return "an array of strings"
		}
		return "an array"
	}
	return "an object"
}

// badText finds a string PostgreSQL cannot store (a NUL byte, invalid
// UTF-8) in a decoded request and names its field.
func badText(v reflect.Value, field string) (string, bool) {
	switch v.Kind() {
	case reflect.String:
		s := v.String()
		return field, strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", false
		}
		return badText(v.Elem(), field)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if f, bad := badText(v.Index(i), field); bad {
				return f, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if f, bad := badText(it.Value(), field); bad {
				return f, true
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" {
				name = f.Name
			}
			if field != "" {
				name = field + "." + name // a nested field by its path: match.title_contains
			}
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				name = field // promoted fields keep their own names
			}
			if f, bad := badText(v.Field(i), name); bad {
				return f, true
			}
		}
	}
	return "", false
}

// markInvalidUTF8 replaces every byte of an invalid UTF-8 sequence with the
// escape \u0000.
func markInvalidUTF8(b []byte) []byte {
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = append(out, `\u0000`...)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return out
}

// markLoneSurrogates replaces each \u escape of a surrogate that is not
// half of a pair (a high one followed by a low one) with \u0000. Escapes
// stand only inside strings in valid JSON, and an escaped backslash is
// skipped whole, so \\ud800 is left alone.
func markLoneSurrogates(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u`)) {
		return b
	}
	surrogate := func(i int) rune { // the escape at b[i:] ("\uXXXX"), or -1
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return -1
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 32)
		if err != nil || v < 0xd800 || v > 0xdfff {
			return -1
		}
		return rune(v)
	}
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r := surrogate(i)
		switch {
		case r < 0:
			i++ // an escape of one character: \\, \", \n, \u0041
			continue
		case r < 0xdc00:
			if lo := surrogate(i + 6); lo >= 0xdc00 {
				i += 11 // a pair
				continue
			}
		}
		if out == nil {
			out = slices.Clone(b)
		}
		copy(out[i:], `\u0000`)
		i += 5
	}
	if out == nil {
		return b
	}
	return out
}

// storableHeader reports whether a header value can be stored as text:
// valid UTF-8 without control characters.
func storableHeader(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// badQueryText refuses query parameters PostgreSQL could not compare with
// stored text (a NUL byte, invalid UTF-8), naming the parameter.
func badQueryText(query map[string][]string) error {
	for _, k := range slices.Sorted(maps.Keys(query)) {
		bad := strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k)
		for _, v := range query[k] {
			bad = bad || strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v)
		}
		if bad {
			return badRequest("invalid_input", strings.ToValidUTF8(k, "\uFFFD"), "query parameter %q contains a NUL byte or invalid UTF-8", strings.ToValidUTF8(k, "\uFFFD"))
		}
	}
	return nil
}

// repeatedQuery refuses the first (by name) query parameter given more
// than once.
func repeatedQuery(query map[string][]string) error {
	for _, k := range slices.Sorted(maps.Keys(query)) {
		if len(query[k]) > 1 {
			return badRequest("invalid_input", k, "query parameter %q is given %d times; it takes one value (several IDs go in one, separated by commas)", k, len(query[k]))
		}
	}
	return nil
}

// unknownQuery refuses the first (by name) query parameter not in known.
func unknownQuery(query map[string][]string, known []string) error {
	for _, k := range slices.Sorted(maps.Keys(query)) {
		if !slices.Contains(known, k) {
			if len(known) == 0 {
				return badRequest("invalid_input", k, "unknown query parameter %q: this operation takes none (a command's input goes in its body)", k)
			}
			return badRequest("invalid_input", k, "unknown query parameter %q; this operation takes %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}

// badCSVText refuses an import file holding text PostgreSQL cannot store (a
// NUL byte, invalid UTF-8), naming the row and column of the first such cell.
func badCSVText(body []byte) error {
	if bytes.IndexByte(body, 0) < 0 && utf8.Valid(body) {
		return nil
	}
	bad := func(s string) bool { return strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) }
	rd := csv.NewReader(bytes.NewReader(body))
	rd.FieldsPerRecord = -1
	var header []string
	for row := 0; ; row++ {
		rec, err := rd.Read()
		if err != nil {
			break
		}
		if row == 0 {
			header = rec
		}
		for i, cell := range rec {
			if !bad(cell) {
				continue
			}
			column := fmt.Sprintf("column %d", i+1)
			if i < len(header) && header[i] != "" && !bad(header[i]) {
				column = header[i]
			}
			if row == 0 {
				return badRequest("invalid_input", "header", "the header row's %s contains a NUL byte or invalid UTF-8", column)
			}
			return badRequest("invalid_input", column, "row %d, %s: contains a NUL byte or invalid UTF-8", row, column)
		}
	}
	return badRequest("invalid_input", "body", "the file contains a NUL byte or invalid UTF-8")
}

// duplicateKey reports the first key that appears twice in one object of
// body, at any depth, by its path ("filter.q", "items[2].id"). body must
// be valid JSON (decodeJSON has parsed it). Keys are compared decoded, so
// "dry_run" and "dry\u005frun" are the same key, as any JSON reader sees
// them. It is one pass over the bytes that allocates nothing for scalars
// and unescaped keys: it runs on every command's path, over up to 10,000
// IDs.
func duplicateKey(body []byte) (string, bool) {
	d := dupScanner{b: body}
	d.value(func() string { return "" })
	return d.dup, d.found
}

type dupScanner struct {
	b     []byte
	i     int
	dup   string // the repeated key's path ("" is a key too)
	found bool
}

func (d *dupScanner) skipSpace() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value scans the value at d.i. path names it, built only for an object
// or array (a duplicate inside is named by it).
func (d *dupScanner) value(path func() string) {
	d.skipSpace()
	if d.i >= len(d.b) || d.found {
		return
	}
	switch d.b[d.i] {
	case '{':
		d.object(path())
	case '[':
		d.array(path())
	case '"':
		d.str()
	default: // a number, true, false or null
		for d.i < len(d.b) && !strings.ContainsRune(",]} \t\n\r", rune(d.b[d.i])) {
			d.i++
		}
	}
}

func (d *dupScanner) array(path string) {
	d.i++ // [
	for n := 0; !d.found; n++ {
		d.skipSpace()
		if d.i >= len(d.b) || d.b[d.i] == ']' {
			d.i++
			return
		}
		d.value(func() string { return fmt.Sprintf("%s[%d]", path, n) })
		d.skipSpace()
		if d.i < len(d.b) && d.b[d.i] == ',' {
			d.i++
		}
	}
}

// object scans the object at d.i, remembering its keys. Objects in
// requests have a few keys, so a slice searched in order beats a map.
func (d *dupScanner) object(path string) {
	d.i++ // {
	var keys [][]byte
	for !d.found {
		d.skipSpace()
		if d.i >= len(d.b) || d.b[d.i] == '}' {
			d.i++
			return
		}
		key := d.str()
		name := func() string {
			if path == "" {
				return string(key)
			}
			return path + "." + string(key)
		}
		for _, k := range keys {
			if bytes.Equal(k, key) {
				d.dup, d.found = name(), true
				return
			}
		}
		keys = append(keys, key)
		d.skipSpace()
		d.i++ // :
		d.value(name)
		d.skipSpace()
		if d.i < len(d.b) && d.b[d.i] == ',' {
			d.i++
		}
	}
}

// str scans the string at d.i and returns its decoded bytes: a slice of
// body when it holds no escape.
func (d *dupScanner) str() []byte {
	d.i++ // "
	start, escaped := d.i, false
	for d.i < len(d.b) {
		j := bytes.IndexByte(d.b[d.i:], '"')
		if j < 0 {
			d.i = len(d.b)
			break
		}
		k := bytes.IndexByte(d.b[d.i:d.i+j], '\\')
		if k < 0 {
			d.i += j // the closing quote
			break
		}
		escaped = true
		d.i += k + 2 // past the escape and the character it escapes
	}
	raw := d.b[start:min(d.i, len(d.b))]
	d.i++ // "
	if !escaped {
		return raw
	}
	var s string
	if err := json.Unmarshal(d.b[start-1:min(d.i, len(d.b))], &s); err != nil {
		return raw
	}
	return []byte(s)
}

package http

import (
	"bufio"
	"strings"
	"unicode"
	"unicode/utf8"
)

// vcardWriter writes vCard 4.0 content lines as RFC 6350 section 3 asks:
// CRLF line ends, and lines longer than 75 octets folded (CRLF and one
// space) without splitting a UTF-8 sequence. Values are escaped by
// vcardText, vcardCompound and vcardList before they are written.
type vcardWriter struct {
	w *bufio.Writer
}

// maxVCardLine is the longest a content line may be, in octets, without
// its line break (RFC 6350 section 3.2).
const maxVCardLine = 75

// prop writes the content line "name:value", value already escaped.
func (v vcardWriter) prop(name, value string) error {
	line := name + ":" + value
	width := maxVCardLine
	for len(line) > width {
		cut := width
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut-- // a multi-octet character stays on one line
		}
		if _, err := v.w.WriteString(line[:cut]); err != nil {
			return err
		}
		if _, err := v.w.WriteString("\r\n "); err != nil {
			return err
		}
		line = line[cut:]
		width = maxVCardLine - 1 // the leading space counts
	}
	if _, err := v.w.WriteString(line); err != nil {
		return err
	}
	_, err := v.w.WriteString("\r\n")
	return err
}

// vcardText escapes a TEXT value (RFC 6350 section 3.4): a backslash,
// comma and semicolon are backslash-escaped (so they never split a list or
// a compound value like N), and a line break (CRLF, CR or LF) becomes
// "\n". Other control characters, which no vCard value may hold and a
// name may still carry from before they were refused, are left out; a tab
// is white space and stays.
func vcardText(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool {
		return r == '\\' || r == ',' || r == ';' || (r != '\t' && unicode.IsControl(r))
	}) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\\' || r == ',' || r == ';':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				i++ // CRLF is one line break
			}
			b.WriteString(`\n`)
		case r == '\n' || r == '\u0085':
			b.WriteString(`\n`)
		case r != '\t' && unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// vcardCompound is a compound value (N): its components escaped and
// separated by semicolons.
func vcardCompound(components ...string) string {
	for i, c := range components {
		components[i] = vcardText(c)
	}
	return strings.Join(components, ";")
}

// vcardList is a list of TEXT values (CATEGORIES): each escaped, separated
// by commas.
func vcardList(values []string) string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = vcardText(v)
	}
	return strings.Join(out, ",")
}

package domain

import (
	"fmt"
	"unicode"
)

// checkLine refuses a control character in a single-line field (a name,
// title, phone, e-mail, external ID, group name, subject): C0 (tab and line
// breaks included), DEL and C1. Such characters are never part of a name;
// stored, they would drive a terminal that prints the name (ESC sequences
// setting its title, BEL), split a CSV or vCard line, or spill into a mail
// header. It looks at s as given, before trimming: a name sent with a line
// break is refused, not silently cut. Only multi-line fields (a message
// body) take line breaks and tabs, see checkText.
//
// It refuses as well the Unicode line and paragraph separators (U+2028,
// U+2029: line breaks too) and the bidirectional embedding, override and
// isolate controls (U+202A–U+202E, U+2066–U+2069), which make a name read
// otherwise than it is written ("\u202Egnp.exe" shows as "exe.png").
func checkLine(field, s string) error {
	for _, r := range s {
		switch {
		case unicode.IsControl(r), r == '\u2028', r == '\u2029':
			return controlError(field, r, false)
		case BidiControl(r):
			return invalid(field, fmt.Sprintf("contains the bidirectional control character %U", r))
		}
	}
	return nil
}

// BidiControl reports whether r is a bidirectional embedding, override or
// isolate control (U+202A–U+202E, U+2066–U+2069).
func BidiControl(r rune) bool {
	return (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// controlError is the refusal of control character r in field; line
// breaks in a single-line field get their own words.
func controlError(field string, r rune, multiline bool) error {
	switch {
	case r == 0:
		return invalid(field, "contains a NUL byte")
	case !multiline && (r == '\n' || r == '\r' || r == '\u0085' || r == '\u2028' || r == '\u2029'):
		return invalid(field, "must be one line (it contains a line break)")
	}
	return invalid(field, fmt.Sprintf("contains the control character %U", r))
}

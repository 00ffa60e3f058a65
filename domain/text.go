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
func checkLine(field, s string) error {
	for _, r := range s {
		if !unicode.IsControl(r) {
			continue
		}
		return controlError(field, r, false)
	}
	return nil
}

// controlError is the refusal of control character r in field; line
// breaks in a single-line field get their own words.
func controlError(field string, r rune, multiline bool) error {
	switch {
	case r == 0:
		return invalid(field, "contains a NUL byte")
	case !multiline && (r == '\n' || r == '\r' || r == '\u0085'):
		return invalid(field, "must be one line (it contains a line break)")
	}
	return invalid(field, fmt.Sprintf("contains the control character %U", r))
}

package domain_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/assignment-ledger/ledger/domain"
)

func TestIsRule(t *testing.T) {
	err := fmt.Errorf("assign: %w", &domain.RuleError{Code: domain.CodeAlreadyAssigned, Detail: "x"})
	if !domain.IsRule(err, domain.CodeAlreadyAssigned) {
		t.Error("wrapped rule error not recognised")
	}
	if domain.IsRule(err, domain.CodeUserDeactivated) {
		t.Error("different code matched")
	}
	if domain.IsRule(errors.New("already_assigned"), domain.CodeAlreadyAssigned) {
		t.Error("plain error matched")
	}
	if domain.IsRule(nil, domain.CodeAlreadyAssigned) {
		t.Error("nil matched")
	}
}

func TestErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&domain.RuleError{Code: "c", Detail: "d"}, "c: d"},
		{&domain.RuleError{Code: "c"}, "c"},
		{&domain.ValidationError{Field: "email", Detail: "bad"}, "invalid email: bad"},
		{&domain.ValidationError{Detail: "bad"}, "invalid input: bad"},
		{&domain.ForbiddenError{Detail: "no"}, "forbidden: no"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

package eventstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Every way the database says "not now" is ErrUnavailable (the API's 503),
// and nothing that is about the request itself is.
func TestTranslateUnavailable(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("read: %w", &pgconn.PgError{Code: code, Message: "m"}) }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{pg("57P03"), true},              // the database is starting up
		{pg("57P01"), true},              // terminated by an administrator (shutdown)
		{pg("57P02"), true},              // crash shutdown
		{pg("08006"), true},              // connection failure
		{pg("08001"), true},              // could not establish a connection
		{pg("57014"), true},              // statement timeout or cancel
		{pg("55P03"), true},              // lock timeout
		{pg("53300"), true},              // too many connections
		{context.DeadlineExceeded, true}, // the request's time limit
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		{pg("23505"), false}, // unique violation
		{pg("22021"), false}, // bad input
		{pg("40001"), false}, // a conflict: ErrConflict
		{context.Canceled, false},
		{errors.New("something else"), false},
	} {
		got := errors.Is(Translate(tc.err), ErrUnavailable)
		if got != tc.want {
			t.Errorf("Translate(%v) unavailable = %v, want %v", tc.err, got, tc.want)
		}
	}
	if !errors.Is(Translate(pg("40001")), ErrConflict) {
		t.Error("a serialization failure is no longer ErrConflict")
	}
}

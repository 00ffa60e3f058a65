package http

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A request's limit can be moved once it is known to be an export or an
// import, not after it passed; its context ends with DeadlineExceeded at
// the limit in force, and with the parent's error when the client leaves.
func TestRequestDeadline(t *testing.T) {
	ctx, cancel := withRequestDeadline(context.Background(), 50*time.Millisecond)
	defer cancel()
	if !useLimit(ctx, time.Hour) {
		t.Fatal("the limit could not be moved")
	}
	if dl, _ := ctx.Deadline(); time.Until(dl) < 59*time.Minute {
		t.Fatalf("deadline %s after the move", time.Until(dl))
	}
	derived, stop := context.WithCancel(ctx)
	defer stop()
	select {
	case <-derived.Done():
		t.Fatal("ended at the request limit after moving to the longer one")
	case <-time.After(200 * time.Millisecond):
	}

	short, cancelShort := withRequestDeadline(context.Background(), time.Millisecond)
	defer cancelShort()
	<-short.Done()
	if !errors.Is(short.Err(), context.DeadlineExceeded) || useLimit(short, time.Hour) {
		t.Fatalf("past its limit: %v, and the limit moved", short.Err())
	}

	parent, leave := context.WithCancel(context.Background())
	left, cancelLeft := withRequestDeadline(parent, time.Hour)
	defer cancelLeft()
	leave()
	<-left.Done()
	if !errors.Is(left.Err(), context.Canceled) {
		t.Fatalf("the client left: %v", left.Err())
	}
}

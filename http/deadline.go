package http

import (
	"context"
	"fmt"
	nethttp "net/http"
	"sync"
	"time"
)

// requestDeadline is a request's context under its time limit: the request
// limit from the start, which the handler may lengthen once to another
// limit (an export's, an import's) when it knows what it serves. The
// decision is the handler's, where the route and the format negotiation
// are known, not a guess from the request's headers before routing.
//
// A context's deadline cannot be moved, so this one keeps its own: Done,
// Err and Deadline follow the current limit, Value the parent's chain.
// Contexts derived from it before the limit moved follow it too (those
// with a shorter deadline of their own keep theirs).
type requestDeadline struct {
	parent context.Context
	start  time.Time
	done   chan struct{}

	mu       sync.Mutex
	stop     func() bool // stops watching the parent
	deadline time.Time
	timer    *time.Timer
	err      error
}

type deadlineKey struct{}

// withRequestDeadline bounds ctx by d from now; cancel releases it.
func withRequestDeadline(parent context.Context, d time.Duration) (*requestDeadline, context.CancelFunc) {
	c := &requestDeadline{parent: parent, start: time.Now(), done: make(chan struct{})}
	// Under the lock: the timer may fire, or the parent end, before both
	// fields are set, and finish reads them.
	c.mu.Lock()
	c.deadline = c.start.Add(d)
	c.timer = time.AfterFunc(d, func() { c.finish(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(parent, func() { c.finish(parent.Err()) })
	c.mu.Unlock()
	return c, func() { c.finish(context.Canceled) }
}

func (c *requestDeadline) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.timer.Stop()
	c.stop()
	close(c.done)
}

// extend moves the deadline to d after the request's start, if that is
// later and the request has not ended yet; it reports whether the request
// now runs under that limit.
func (c *requestDeadline) extend(d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false
	}
	dl := c.start.Add(d)
	if !dl.After(c.deadline) {
		return true
	}
	if !c.timer.Stop() {
		return false // it fired: finish is waiting for the lock
	}
	c.deadline = dl
	c.timer = time.AfterFunc(time.Until(dl), func() { c.finish(context.DeadlineExceeded) })
	return true
}

func (c *requestDeadline) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pd, ok := c.parent.Deadline(); ok && pd.Before(c.deadline) {
		return pd, true
	}
	return c.deadline, true
}

func (c *requestDeadline) Done() <-chan struct{} { return c.done }

func (c *requestDeadline) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *requestDeadline) Value(key any) any {
	if key == (deadlineKey{}) {
		return c
	}
	return c.parent.Value(key)
}

// useLimit moves the request of ctx to the time limit d (counted from the
// request's start), for a handler that serves an export or an import. It
// reports false when the request has ended already.
func useLimit(ctx context.Context, d time.Duration) bool {
	c, ok := ctx.Value(deadlineKey{}).(*requestDeadline)
	return !ok || c.extend(d)
}

// useLimit moves r to the time limit d (see the function useLimit), and
// the connection's write deadline with it: the server's WriteTimeout
// (`ledger serve` sets one), counted from the request's start, would
// otherwise cut an answer whose limit is longer. A stuck client stays
// bounded: the write deadline is the limit plus writeGrace.
func (s *Server) useLimit(w nethttp.ResponseWriter, r *nethttp.Request, d time.Duration) error {
	if !useLimit(r.Context(), d) {
		return fmt.Errorf("request limit: %w", context.Cause(r.Context()))
	}
	end := time.Now().Add(d)
	if dl, ok := r.Context().Deadline(); ok {
		end = dl
	}
	// Not every writer supports deadlines (a test's recorder): the
	// context's limit holds regardless.
	_ = nethttp.NewResponseController(w).SetWriteDeadline(end.Add(writeGrace))
	return nil
}

// writeGrace is how long past its time limit an export may still take to
// be written out to a slow client.
const writeGrace = time.Minute

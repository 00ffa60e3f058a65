package eventstore

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// announcer wakes subscribers after commits: those of this process at once,
// through the functions registered with Store.OnAppend, and those of other
// processes with NOTIFY on NotifyChannel, coalesced: while one notification
// is on its way (and for announceSpacing after it), later commits only
// raise the position the next one carries, so a burst of commands costs a
// few notifications rather than one each, and no command waits for one.
//
// Announcements are not part of the append transaction on purpose:
// PostgreSQL serialises every notifying transaction on one database-wide
// lock held until its commit record is flushed, which would put every
// command's fsync in single file. Here the lock is held by a tiny
// transaction that does not wait for its flush. A crash between a commit and
// its announcement loses only the wake-up; subscribers poll as a fallback.
type announcer struct {
	pool *pgxpool.Pool

	localMu sync.RWMutex
	local   map[*func(position int64)]struct{}

	mu      sync.Mutex
	pending int64 // highest position committed and not announced yet
	running bool  // an announcing goroutine is at work
}

const (
	// announceTimeout bounds one NOTIFY; a lost one only delays a wake-up.
	announceTimeout = 5 * time.Second
	// announceSpacing is the least time between two notifications: other
	// processes hear of a commit at most this much later (this process's
	// own subscribers are woken directly).
	announceSpacing = 5 * time.Millisecond
)

// onAppend registers fn to be called with the position of every commit
// announced, until remove is called.
func (a *announcer) onAppend(fn func(position int64)) (remove func()) {
	key := &fn
	a.localMu.Lock()
	defer a.localMu.Unlock()
	if a.local == nil {
		a.local = map[*func(position int64)]struct{}{}
	}
	a.local[key] = struct{}{}
	return func() {
		a.localMu.Lock()
		defer a.localMu.Unlock()
		delete(a.local, key)
	}
}

// announce arranges for position to be announced soon; it never blocks.
func (a *announcer) announce(position int64) {
	if position <= 0 {
		return
	}
	a.localMu.RLock()
	for fn := range a.local {
		(*fn)(position)
	}
	a.localMu.RUnlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending = max(a.pending, position)
	if !a.running {
		a.running = true
		go a.run()
	}
}

// run sends announcements until nothing is pending, then ends.
func (a *announcer) run() {
	for {
		a.mu.Lock()
		p := a.pending
		a.pending = 0
		if p == 0 {
			a.running = false
			a.mu.Unlock()
			return
		}
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
		_, _ = a.pool.Exec(ctx, `BEGIN; SET LOCAL synchronous_commit TO OFF; SELECT pg_notify('`+
			NotifyChannel+`', '`+strconv.FormatInt(p, 10)+`'); COMMIT`)
		cancel()
		time.Sleep(announceSpacing)
	}
}

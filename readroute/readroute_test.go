package readroute

import (
	"testing"
	"time"
)

func TestParseLSN(t *testing.T) {
	for in, want := range map[string]uint64{"0/0": 0, "0/16B3748": 0x16B3748, "1/0": 1 << 32, "A/FF": 0xA<<32 | 0xFF} {
		if got, err := parseLSN(in); err != nil || got != want {
			t.Errorf("parseLSN(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "16B3748", "x/1", "1/y", "100000000/0"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q) accepted", bad)
		}
	}
}

// A replica's lag is the age of the oldest sample of the primary's WAL
// position it has not replayed: 0 when it has the newest, however old that
// is (an idle primary), and the first missing sample's age otherwise.
func TestLagIsTheAgeOfTheOldestWALNotReplayed(t *testing.T) {
	r := &Router{maxLag: time.Second}
	t0 := time.Now()
	for i, lsn := range []uint64{100, 200, 300, 400} {
		r.addSample(t0.Add(time.Duration(i)*time.Second), lsn)
	}
	now := t0.Add(10 * time.Second)
	for replay, want := range map[uint64]time.Duration{400: 0, 500: 0, 399: 7 * time.Second, 300: 7 * time.Second, 250: 8 * time.Second, 50: 10 * time.Second} {
		if got := r.lagOf(replay, now); got != want {
			t.Errorf("replayed %d: lag %v, want %v", replay, got, want)
		}
	}
	// Samples older than the window go, but one is always kept.
	r.addSample(t0.Add(time.Hour), 400)
	if len(r.samples) != 1 {
		t.Errorf("%d samples kept after an hour", len(r.samples))
	}
}

package main

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows long work: a bar on a terminal, a plain line per second
// otherwise (logs and CI keep readable output).
type progress struct {
	bar   *progressbar.ProgressBar
	env   *cliEnv
	label string
	// unit says what is counted ("events", "event reads").
	unit  string
	total int64
	last  time.Time
	cur   int64
}

// newProgress starts a progress display of unit; total < 0 means unknown.
func newProgress(env *cliEnv, label, unit string, total int64) *progress {
	p := &progress{env: env, label: label, unit: unit, total: total, last: time.Now()}
	if env.isTerminal {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(env.stderr),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

func (p *progress) setTotal(total int64) {
	p.total = total
	if p.bar != nil {
		p.bar.ChangeMax64(total)
	}
}

func (p *progress) set(n int64) {
	p.cur = n
	if p.bar != nil {
		_ = p.bar.Set64(n)
		return
	}
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		p.line()
	}
}

func (p *progress) line() {
	if p.total > 0 {
		fmt.Fprintf(p.env.stderr, "%s: %d/%d %s (%.0f%%)\n", p.label, p.cur, p.total, p.unit, 100*float64(p.cur)/float64(p.total))
	} else {
		fmt.Fprintf(p.env.stderr, "%s: %d %s\n", p.label, p.cur, p.unit)
	}
}

func (p *progress) done() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.line()
}

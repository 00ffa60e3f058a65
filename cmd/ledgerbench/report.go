package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what bench.json holds.
type report struct {
	Command      string         `json:"command"`
	Started      time.Time      `json:"started"`
	Finished     time.Time      `json:"finished"`
	Machine      machine        `json:"machine"`
	Tree         map[string]any `json:"tree,omitempty"`
	Settings     map[string]any `json:"settings"`
	Figures      []figure       `json:"figures"`
	Details      map[string]any `json:"details"`
	PhaseSeconds []phaseTime    `json:"phase_seconds"`
	LoadAvg      []string       `json:"load_average"`
	Errors       []string       `json:"errors,omitempty"`
}

type phaseTime struct {
	Phase   string  `json:"phase"`
	Seconds float64 `json:"seconds"`
}

// figure is one line of the table.
type figure struct {
	Phase  string  `json:"phase"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	// Pass is nil for figures without a target.
	Pass *bool  `json:"pass,omitempty"`
	Note string `json:"note,omitempty"`
}

func (r *report) add(f figure) { r.Figures = append(r.Figures, f) }

func (r *report) detail(phase string, v any) {
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details[phase] = v
}

// targetAtLeast / targetBelow build a figure with a pass/miss verdict.
func targetAtLeast(f figure, min float64, label string) figure {
	pass := f.Value >= min
	f.Pass, f.Target = &pass, label
	return f
}

func targetAtMost(f figure, max float64, label string) figure {
	pass := f.Value <= max
	f.Pass, f.Target = &pass, label
	return f
}

func targetBelow(f figure, max float64, label string) figure {
	pass := f.Value < max
	f.Pass, f.Target = &pass, label
	return f
}

type machine struct {
	NumCPU            int    `json:"num_cpu"`
	MemTotalBytes     int64  `json:"mem_total_bytes"`
	CPUModel          string `json:"cpu_model,omitempty"`
	GoVersion         string `json:"go_version"`
	GOOS              string `json:"goos"`
	GOARCH            string `json:"goarch"`
	PostgresVersion   string `json:"postgres_version"`
	Fsync             string `json:"fsync"`
	SynchronousCommit string `json:"synchronous_commit"`
	FullPageWrites    string `json:"full_page_writes"`
	WalSyncMethod     string `json:"wal_sync_method"`
	SharedBuffers     string `json:"shared_buffers"`
	MaxWALSize        string `json:"max_wal_size"`
	CheckpointTimeout string `json:"checkpoint_timeout"`
	MaxConnections    string `json:"max_connections"`
	Date              string `json:"date"`
}

func machineInfo(ctx context.Context, s *server) machine {
	m := machine{
		NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Date: time.Now().UTC().Format(time.RFC3339),
	}
	m.MemTotalBytes, m.CPUModel = procInfo()
	show := func(name string) string {
		var v string
		if err := s.admin.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			return "?"
		}
		return v
	}
	_ = s.admin.QueryRow(ctx, `SELECT version()`).Scan(&m.PostgresVersion)
	m.Fsync, m.SynchronousCommit, m.FullPageWrites = show("fsync"), show("synchronous_commit"), show("full_page_writes")
	m.WalSyncMethod, m.SharedBuffers, m.MaxConnections = show("wal_sync_method"), show("shared_buffers"), show("max_connections")
	m.MaxWALSize, m.CheckpointTimeout = show("max_wal_size"), show("checkpoint_timeout")
	return m
}

func procInfo() (memTotal int64, cpuModel string) {
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				fields := strings.Fields(rest)
				if len(fields) > 0 {
					kb, _ := strconv.ParseInt(fields[0], 10, 64)
					memTotal = kb * 1024
				}
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				cpuModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
		f.Close()
	}
	return memTotal, cpuModel
}

func printHeader(w io.Writer, r *report) {
	m := r.Machine
	fmt.Fprintf(w, "ledgerbench  %s\n", m.Date)
	fmt.Fprintf(w, "machine:     %d CPU (%s), %.1f GiB RAM, %s %s/%s\n", m.NumCPU, m.CPUModel,
		float64(m.MemTotalBytes)/(1<<30), m.GoVersion, m.GOOS, m.GOARCH)
	fmt.Fprintf(w, "postgres:    %s\n", m.PostgresVersion)
	fmt.Fprintf(w, "durability:  fsync=%s synchronous_commit=%s full_page_writes=%s wal_sync_method=%s\n",
		m.Fsync, m.SynchronousCommit, m.FullPageWrites, m.WalSyncMethod)
	fmt.Fprintf(w, "checkpoints: max_wal_size=%s checkpoint_timeout=%s\n\n", m.MaxWALSize, m.CheckpointTimeout)
}

func printTable(w io.Writer, r *report) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tFIGURE\tVALUE\tTARGET\tRESULT\t")
	for _, f := range r.Figures {
		result := ""
		if f.Pass != nil {
			result = "MISS"
			if *f.Pass {
				result = "pass"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\t\n", f.Phase, f.Name, formatValue(f.Value), f.Unit, f.Target, result)
	}
	tw.Flush()
	var notes []string
	for _, f := range r.Figures {
		if f.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s / %s: %s", f.Phase, f.Name, f.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR %s\n", e)
	}
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

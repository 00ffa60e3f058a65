package projections

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

const metricsTimeout = 2 * time.Second

// qProjectionLag reads, per projection, its checkpoint, the head position,
// and the recorded time of the oldest event it has not applied (in
// subscriber order, through the events_transaction_order index).
const qProjectionLag = `SELECT c.consumer_group, c.last_position, ledger_head_position(),
       (SELECT e.recorded_at FROM ledger_events_after(c.last_transaction_id, c.last_position) e
        ORDER BY e.transaction_id, e.position LIMIT 1)
FROM projection_checkpoints c WHERE c.consumer_group = ANY($1)`

type collector struct {
	pool  *pgxpool.Pool
	names []string
	folds func() FoldStats

	position *prometheus.Desc
	lag      *prometheus.Desc
	lagSecs  *prometheus.Desc
	up       *prometheus.Desc
	folded   *prometheus.Desc
}

// Collector returns a Prometheus collector of the Runner's projections:
// checkpoint position, lag in events (head position minus checkpoint
// position) and in seconds (age of the oldest event not yet applied, 0 when
// caught up), and how the fold projections brought their customers up to
// date (from the batch alone, or read). It queries the database on each
// scrape.
func (r *Runner) Collector() prometheus.Collector {
	return &collector{
		pool:     r.pool,
		names:    r.Names(),
		folds:    r.FoldStats,
		position: prometheus.NewDesc("ledger_projection_checkpoint_position", "Position of the last event the projection applied.", []string{"projection"}, nil),
		lag:      prometheus.NewDesc("ledger_projection_lag_events", "Head event position minus the projection's checkpoint position.", []string{"projection"}, nil),
		lagSecs:  prometheus.NewDesc("ledger_projection_lag_seconds", "Age of the oldest event the projection has not applied yet (0 when caught up).", []string{"projection"}, nil),
		up:       prometheus.NewDesc("ledger_projection_metrics_up", "1 when the projection metrics could be read.", nil, nil),
		folded: prometheus.NewDesc("ledger_projection_customers_folded_total",
			"Customers the engine brought up to date for the customer-stream read models, by source: batch (its cache was current) or read (their streams were read).",
			[]string{"source"}, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.position, c.lag, c.lagSecs, c.up, c.folded} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.folds()
	ch <- prometheus.MustNewConstMetric(c.folded, prometheus.CounterValue, float64(st.FromBatch), "batch")
	ch <- prometheus.MustNewConstMetric(c.folded, prometheus.CounterValue, float64(st.Read), "read")
	ctx, cancel := context.WithTimeout(context.Background(), metricsTimeout)
	defer cancel()
	var name string
	var pos, head int64
	var oldest *time.Time
	rows, err := c.pool.Query(ctx, qProjectionLag, c.names)
	if err == nil {
		now := time.Now()
		_, err = pgx.ForEachRow(rows, []any{&name, &pos, &head, &oldest}, func() error {
			lagSecs := 0.0
			if oldest != nil {
				lagSecs = max(now.Sub(*oldest).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(pos), name)
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(max(head-pos, 0)), name)
			ch <- prometheus.MustNewConstMetric(c.lagSecs, prometheus.GaugeValue, lagSecs, name)
			return nil
		})
	}
	up := 1.0
	if err != nil {
		up = 0
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
}

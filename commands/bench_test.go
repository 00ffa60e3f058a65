package commands_test

import (
	"context"
	"sync/atomic"
	"testing"
)

func BenchmarkCommands(b *testing.B) {
	b.Run("assign+unassign", func(b *testing.B) {
		cmd, tb := setup(b)
		ctx := context.Background()
		// Many customers, so that streams stay short as in real use.
		customers := seedCustomers(b, tb, 20_000)
		users := tb.users(b, 64)
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(next.Add(1)-1) % len(customers)
				if _, err := cmd.AssignUser(ctx, tb.admin, customers[i], users[i%len(users)]); err != nil {
					b.Error(err)
					return
				}
				if _, err := cmd.UnassignUser(ctx, tb.admin, customers[i], users[i%len(users)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(2*b.N)/b.Elapsed().Seconds(), "commands/s")
	})
	b.Run("raw-insert", func(b *testing.B) {
		_, tb := setup(b)
		ctx := context.Background()
		if _, err := tb.pool.Exec(ctx, `CREATE TABLE bench (id bigserial PRIMARY KEY, v text)`); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tb.pool.Exec(ctx, `INSERT INTO bench (v) VALUES ('x')`); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
	})
}

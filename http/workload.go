package http

import (
	"fmt"
	"io"
	nethttp "net/http"
	"strconv"
	"time"

	"github.com/assignment-ledger/ledger/internal/xlsx"
	"github.com/assignment-ledger/ledger/projections"
)

// workloadColumns are the workload report's columns in CSV and XLSX; the
// last row is the customers without a team.
var workloadColumns = []string{"user_id", "name", "customers", "leads", "away_until"}

func workloadRows(wl projections.Workload) [][]string {
	rows := make([][]string, 0, len(wl.Items)+1)
	for _, it := range wl.Items {
		away := ""
		if it.AwayUntil != nil {
			away = it.AwayUntil.UTC().Format(time.RFC3339)
		}
		rows = append(rows, []string{it.UserID, it.Name, strconv.Itoa(it.Customers), strconv.Itoa(it.Leads), away})
	}
	return append(rows, []string{"", "(unassigned)", strconv.Itoa(wl.Unassigned), "", ""})
}

// workload is GET /v1/reports/workload (admin, auditor): customers and
// leads per active user, and the unassigned customers, from the read
// models; as JSON, or CSV and XLSX by ?format= or Accept.
func (s *Server) workload(w nethttp.ResponseWriter, r *nethttp.Request) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = map[string]string{"application/json": "json", "text/csv": "csv", xlsx.MediaType: "xlsx"}[negotiate(r, "application/json", "text/csv", xlsx.MediaType)]
	}
	if format != "json" && format != "csv" && format != "xlsx" {
		return badRequest("invalid_input", "format", "format must be json, csv or xlsx")
	}
	wl, err := s.q.Workload(r.Context(), principal(r.Context()).TenantID)
	if err != nil {
		return err
	}
	filename := fmt.Sprintf("workload-%s.%s", time.Now().UTC().Format("20060102"), format)
	switch format {
	case "csv":
		return s.csvExport(w, r, filename, workloadColumns, func(row func(cells ...string) error) error {
			for _, cells := range workloadRows(wl) {
				if err := row(cells...); err != nil {
					return err
				}
			}
			return nil
		})
	case "xlsx":
		return s.stream(w, r, exportHeader(xlsx.MediaType, filename), func(out io.Writer) error {
			xw, err := xlsx.NewWriter(out, "Workload")
			if err != nil {
				return err
			}
			if err := xw.WriteRow(workloadColumns); err != nil {
				return err
			}
			for _, cells := range workloadRows(wl) {
				if err := xw.WriteRow(cells); err != nil {
					return err
				}
			}
			return xw.Close()
		})
	}
	writeJSON(w, nethttp.StatusOK, wl)
	return nil
}

package console

import (
	nethttp "net/http"
	"time"

	"github.com/assignment-ledger/ledger/domain"
	"github.com/assignment-ledger/ledger/projections"
)

// workloadBar is one bar of the workload chart, laid out by the server:
// the page is an SVG drawn here, with no script and no chart library.
type workloadBar struct {
	Name             string
	Customers, Leads int
	Away             string
	Y, Width, LeadW  int
	LabelY, ValueX   int
}

type workloadData struct {
	Bars       []workloadBar
	Unassigned int
	Height     int
	// ViewW is the drawing's width (viewBox units): labels, the longest
	// bar and its value.
	ViewW int
}

// Chart geometry, in viewBox units (the SVG scales to the page's width).
const (
	chartLabelW = 160
	chartBarW   = 400
	chartRow    = 28
	chartBarH   = 18
)

// workload is the Workload page (admins and auditors): customers and leads
// per user as a bar chart, drawn as SVG by the server from the same report
// as GET /v1/reports/workload.
func (c *Console) workload(w nethttp.ResponseWriter, r *nethttp.Request) {
	s, ok := c.requireSession(w, r)
	if !ok {
		return
	}
	if err := domain.RequireReader(s.Actor); err != nil {
		c.fail(w, r, err)
		return
	}
	lagging := c.waitForPosition(r, projections.MyClients, projections.CustomerList)
	wl, err := c.d.Queries.Workload(r.Context(), s.TenantID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	most := 1
	for _, it := range wl.Items {
		most = max(most, it.Customers)
	}
	d := workloadData{Unassigned: wl.Unassigned, ViewW: chartLabelW + chartBarW + 60, Height: max(1, len(wl.Items))*chartRow + 8}
	for i, it := range wl.Items {
		b := workloadBar{Name: it.Name, Customers: it.Customers, Leads: it.Leads, Y: 4 + i*chartRow,
			Width: it.Customers * chartBarW / most, LeadW: it.Leads * chartBarW / most}
		b.LabelY, b.ValueX = b.Y+chartBarH-4, chartLabelW+b.Width+6
		if it.AwayUntil != nil && it.AwayUntil.After(time.Now()) {
			b.Away = it.AwayUntil.UTC().Format("2006-01-02")
		}
		d.Bars = append(d.Bars, b)
	}
	v := view{Lagging: lagging, Title: "Workload", Nav: "workload", Data: d}
	c.render(w, r, nethttp.StatusOK, "workload", v)
}

package http

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	nethttp "net/http"
	"strings"
)

// exportWriter holds an export's headers back until its first byte goes
// out, so that until then a failure can still be answered as a problem.
type exportWriter struct {
	w      nethttp.ResponseWriter
	header func(nethttp.Header)
	sent   bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	if !e.sent {
		e.sent = true
		e.header(e.w.Header())
		e.w.WriteHeader(nethttp.StatusOK)
	}
	return e.w.Write(p)
}

// exportHeader sets an export's media type and file name.
func exportHeader(contentType, filename string) func(nethttp.Header) {
	return func(h nethttp.Header) {
		h.Set("Content-Type", contentType)
		if filename != "" {
			h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
		}
	}
}

// stream answers an export that produce writes, buffered. An export is
// complete or visibly broken: a failure before any byte went out is returned,
// to be answered as a problem (503 when the database is unavailable), and a
// failure after aborts the connection (http.ErrAbortHandler), so that the
// client sees a transport error rather than a 200 that ends like a complete
// file.
//
// Every export goes through here, and here its request moves from the
// request time limit to the export limit: whatever route, format or header
// asked for it (Accept, ?format=, the console's links).
func (s *Server) stream(w nethttp.ResponseWriter, r *nethttp.Request, header func(nethttp.Header), produce func(io.Writer) error) error {
	if err := s.useLimit(w, r, s.exportTimeout); err != nil {
		return err
	}
	ew := &exportWriter{w: w, header: header}
	bw := bufio.NewWriterSize(ew, 32<<10)
	err := produce(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		if !ew.sent {
			// An empty export (NDJSON with no entries): still a 200.
			header(w.Header())
			w.WriteHeader(nethttp.StatusOK)
		}
		return nil
	}
	if !ew.sent {
		return err
	}
	if !errors.Is(r.Context().Err(), context.Canceled) { // a client that left needs no log line
		s.log.ErrorContext(r.Context(), "export failed midway; aborting the response", slog.String("error", err.Error()),
			slog.String("request_id", requestID(r.Context())))
	}
	panic(nethttp.ErrAbortHandler)
}

// csvExport streams a CSV file: the header row, then the rows each writes
// through row; every cell is defused against formula injection.
func (s *Server) csvExport(w nethttp.ResponseWriter, r *nethttp.Request, filename string, header []string,
	each func(row func(cells ...string) error) error) error {
	return s.stream(w, r, exportHeader("text/csv; charset=utf-8", filename), func(out io.Writer) error {
		return writeCSV(out, header, each)
	})
}

// writeCSV writes the header row and the rows each writes through row,
// every cell defused against formula injection.
func writeCSV(out io.Writer, header []string, each func(row func(cells ...string) error) error) error {
	cw := csv.NewWriter(out)
	if err := cw.Write(header); err != nil {
		return err
	}
	err := each(func(cells ...string) error {
		for i, c := range cells {
			cells[i] = csvSafe(c)
		}
		return cw.Write(cells)
	})
	if err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formula injection: a cell that begins with
// = + - @, a tab or a carriage return is prefixed with ' (the contract's rule,
// for every cell of every CSV export).
func csvSafe(v string) string {
	if v != "" && strings.ContainsAny(v[:1], "=+-@\t\r") {
		return "'" + v
	}
	return v
}

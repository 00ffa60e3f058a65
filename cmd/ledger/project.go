package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func runProject(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "project", "project [--metrics-addr HOST:PORT]",
		"Runs the projections, the ledger log's checkpoint signing and, with LEDGER_SMTP_URL and\n"+
			"LEDGER_MAIL_FROM, the outbox's e-mails against DATABASE_URL (after applying pending\n"+
			"migrations), without serving the API: beside `ledger serve --no-projections` nodes,\n"+
			"so API nodes and projection workers scale apart. Any number may run at once: each batch\n"+
			"of events is applied by one of them, exactly once. Stops gracefully on SIGTERM/SIGINT;\n"+
			"exits non-zero if the projections stop on their own.")
	metricsAddr := fs.String("metrics-addr", "", "serve /metrics, /healthz and /readyz on `HOST:PORT` (default: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	n, err := openNode(ctx, env)
	if err != nil {
		return err
	}
	defer n.close()

	var srv *nethttp.Server
	serveErr := make(chan error, 1)
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *metricsAddr, err)
		}
		srv = &nethttp.Server{
			Handler:           n.probes(),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
		}
		go func() { serveErr <- srv.Serve(ln) }()
		n.log.Info("serving metrics", slog.String("addr", ln.Addr().String()))
	}

	bg := n.startWorkers(ctx)
	n.log.Info("projecting")
	var failure error
	select {
	case <-ctx.Done():
	case err := <-bg.failed:
		failure = fmt.Errorf("projections: %w", err)
	case err := <-serveErr:
		failure = fmt.Errorf("serve metrics: %w", err)
	}
	n.log.Info("shutting down")
	bg.stop()
	if srv != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil && failure == nil {
			failure = fmt.Errorf("shutdown: %w", err)
		}
	}
	if failure != nil {
		return failure
	}
	n.log.Info("stopped")
	return nil
}

// probes serves a projection worker's /metrics, /healthz and /readyz, as
// the API serves them on an API node.
func (n *node) probes() nethttp.Handler {
	mux := nethttp.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w nethttp.ResponseWriter, _ *nethttp.Request) {
		writeStatus(w, nethttp.StatusOK, "ok", "")
	})
	mux.HandleFunc("GET /readyz", func(w nethttp.ResponseWriter, r *nethttp.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		err := n.store.Ready(ctx)
		if err == nil {
			err = n.ready(ctx)
		}
		if err != nil {
			w.Header().Set("Retry-After", "1")
			writeStatus(w, nethttp.StatusServiceUnavailable, "not_ready", err.Error())
			return
		}
		writeStatus(w, nethttp.StatusOK, "ready", "")
	})
	return mux
}

func writeStatus(w nethttp.ResponseWriter, code int, status, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]string{"status": status}
	if detail != "" {
		body["detail"] = detail
	}
	_ = json.NewEncoder(w).Encode(body)
}

# Assignment ledger: build, run and test plumbing.
# `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO          ?= go
BIN         := bin/ledger
PG_DIR      := .data
PG_PORT     ?= 54329
REPLICA_DIR := .data-replica
REPLICA_PORT ?= 54330
SYNC        ?=
MAIL_PORT   ?= 2525
TESTFLAGS   ?=
BENCH_FLAGS ?=
FUZZTIME    ?= 10s
FUZZ_PKGS   := ./http ./commands
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@latest

.PHONY: help build run run-replica stop-replica stop test fuzz screenshots bench bench-quick lint clean

help: ## list the targets
	@echo "Targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		sed -E 's/^([a-zA-Z_-]+):.*## (.*)/  \1\t\2/' | expand -t 16
	@echo
	@echo "Without DATABASE_URL, run/test/bench start a local PostgreSQL themselves"
	@echo "(run: persistent cluster in $(PG_DIR)/ on port $(PG_PORT); test/bench: throwaway cluster)."
	@echo "Variables: TESTFLAGS='-run Foo -v'  BENCH_FLAGS='...'  LEDGER_ADDR=127.0.0.1:8080  MAIL_PORT=2525"

build: ## build bin/ledger
	$(GO) build -o $(BIN) ./cmd/ledger

run: build ## start local PostgreSQL (.data/), migrate, bootstrap a demo tenant, a mail sink (.data/mail/), serve
	@if [ -z "$${DATABASE_URL:-}" ]; then \
		scripts/pg.sh start $(PG_DIR) $(PG_PORT) durable; \
		DATABASE_URL=$$(scripts/pg.sh url $(PG_PORT)); \
	fi; \
	export DATABASE_URL; \
	export LEDGER_ADDR="$${LEDGER_ADDR:-127.0.0.1:8080}"; \
	echo "DATABASE_URL=$$DATABASE_URL"; \
	$(BIN) migrate; \
	mkdir -p $(PG_DIR); \
	if [ -z "$${LEDGER_KEK:-}$${LEDGER_KEK_FILE:-}" ]; then \
		if [ ! -s $(PG_DIR)/kek ]; then (umask 077; head -c 32 /dev/urandom | base64 > $(PG_DIR)/kek); fi; \
		export LEDGER_KEK_FILE=$(PG_DIR)/kek; \
		echo "Key-encryption key: $(PG_DIR)/kek (LEDGER_KEK_FILE; demo only: it sits beside the database)"; \
	fi; \
	if [ ! -s $(PG_DIR)/demo.json ]; then \
		$(BIN) bootstrap --tenant Demo --admin-name "Demo Admin" --admin-email admin@demo.example > $(PG_DIR)/demo.json.tmp; \
		mv $(PG_DIR)/demo.json.tmp $(PG_DIR)/demo.json; \
	fi; \
	key=$$(tr -d '\n' < $(PG_DIR)/demo.json | sed -n 's/.*"api_key"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'); \
	echo; \
	tenant=$$(tr -d '\n' < $(PG_DIR)/demo.json | sed -n 's/.*"tenant_id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p'); \
	echo "Demo admin API key: $${key:-<not found, see $(PG_DIR)/demo.json>}"; \
	echo "Demo tenant ID:     $${tenant:-<not found>} (ledger history --tenant; 'ledger tenants' lists all)"; \
	if [ -z "$${LEDGER_SMTP_URL:-}" ]; then \
		$(BIN) mailsink --addr 127.0.0.1:$(MAIL_PORT) --dir $(PG_DIR)/mail & \
		sink=$$!; \
		trap 'kill $$sink 2>/dev/null || true' EXIT; \
		export LEDGER_SMTP_URL=smtp://127.0.0.1:$(MAIL_PORT) LEDGER_MAIL_FROM="$${LEDGER_MAIL_FROM:-ledger@demo.example}"; \
		mail_where="written to $(PG_DIR)/mail/ as .eml files (ledger mailsink on 127.0.0.1:$(MAIL_PORT))"; \
	else \
		mail_where="sent through LEDGER_SMTP_URL"; \
	fi; \
	echo "Listening on:       http://$$LEDGER_ADDR"; \
	echo "E-mail:             $$mail_where"; \
	echo "Web console:        http://$$LEDGER_ADDR/ (sign in with the key above)"; \
	echo "(bootstrap output in $(PG_DIR)/demo.json; 'make stop' stops the local PostgreSQL)"; \
	echo; \
	$(BIN) serve

run-replica: ## start a streaming hot standby of .data/ in .data-replica/ (SYNC=1: synchronous); prints LEDGER_REPLICA_URLS
	scripts/pg.sh replica $(PG_PORT) $(REPLICA_DIR) $(REPLICA_PORT) $(if $(SYNC),sync) durable
	@echo "LEDGER_REPLICA_URLS=$$(scripts/pg.sh url $(REPLICA_PORT))"
	@echo "(LEDGER_REPLICA_URLS=... make run serves reads from it; 'make stop-replica' stops it)"

stop-replica: ## stop the standby started by `make run-replica`
	scripts/pg.sh stop $(REPLICA_DIR)

stop: ## stop the local PostgreSQL started by `make run`
	scripts/pg.sh stop $(PG_DIR)

test: ## go test -race ./... (throwaway PostgreSQL unless DATABASE_URL is set; installs LibreOffice and Chromium if missing)
	@scripts/libreoffice.sh
	@scripts/chromium.sh
	@if [ -n "$${DATABASE_URL:-}" ]; then \
		echo "Using DATABASE_URL from the environment"; \
		$(GO) test -race -count=1 -timeout 45m $(TESTFLAGS) ./...; \
	else \
		scripts/with-pg.sh $(GO) test -race -count=1 -timeout 45m $(TESTFLAGS) ./...; \
	fi

fuzz: ## run every fuzz target for FUZZTIME each (default 10s); `make test` runs their seed corpora
	@for pkg in $(FUZZ_PKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

screenshots: ## write a PNG of each console page to docs/screenshots/ (headless Chromium, throwaway PostgreSQL)
	@scripts/chromium.sh
	@mkdir -p docs/screenshots
	@export LEDGER_SCREENSHOTS="$(CURDIR)/docs/screenshots"; \
	if [ -n "$${DATABASE_URL:-}" ]; then \
		$(GO) test -count=1 -run '^TestConsoleScreenshots$$' -v ./console/; \
	else \
		scripts/with-pg.sh $(GO) test -count=1 -run '^TestConsoleScreenshots$$' -v ./console/; \
	fi

bench: ## run cmd/ledgerbench (throwaway durable PostgreSQL unless DATABASE_URL is set)
	@if [ -n "$${DATABASE_URL:-}" ]; then \
		echo "Using DATABASE_URL from the environment"; \
		$(GO) run ./cmd/ledgerbench $(BENCH_FLAGS); \
	else \
		scripts/with-pg.sh --durable $(GO) run ./cmd/ledgerbench $(BENCH_FLAGS); \
	fi

bench-quick: ## short benchmark run (bench with BENCH_FLAGS=-quick)
	@$(MAKE) --no-print-directory bench BENCH_FLAGS="-quick $(BENCH_FLAGS)"

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l .); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

clean: ## remove build output
	rm -rf bin/

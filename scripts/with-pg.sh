#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster.
#
#   with-pg.sh [--durable] CMD [ARGS...]
#
# Creates a temporary directory, starts a cluster there (scripts/pg.sh) on a
# free port, exports DATABASE_URL (database "ledger", superuser "ledger"; tests
# may create their own databases), runs CMD, then always stops the cluster and
# removes the directory. Exits with CMD's exit code.
#
# --durable (or WITH_PG_DURABLE=1) keeps fsync/synchronous_commit on, for
# benchmarks; the default is the fast, non-durable test configuration.
# WITH_PG_PORT_BASE sets the first port tried (default 55432).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
pg="$here/pg.sh"

mode=
if [ "${1:-}" = --durable ]; then
	mode=durable
	shift
elif [ "${WITH_PG_DURABLE:-0}" = 1 ]; then
	mode=durable
fi
[ $# -ge 1 ] || {
	echo "usage: with-pg.sh [--durable] CMD [ARGS...]" >&2
	exit 2
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ledger-pg.XXXXXX")
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	"$pg" stop "$tmp" >/dev/null 2>&1 || "$pg" stop "$tmp" || true
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pick a free port: start at a base offset by our PID so concurrent runs
# rarely collide, and retry on a port that got taken in the meantime.
base=${WITH_PG_PORT_BASE:-55432}
port=$((base + $$ % 500))
started=
for _ in $(seq 1 50); do
	if port_in_use "$port"; then
		port=$((port + 1))
		continue
	fi
	rc=0
	"$pg" start "$tmp" "$port" $mode || rc=$?
	if [ "$rc" -eq 0 ]; then
		started=1
		break
	elif [ "$rc" -eq 3 ]; then
		port=$((port + 1))
		continue
	fi
	echo "with-pg.sh: could not start PostgreSQL" >&2
	exit "$rc"
done
[ -n "$started" ] || {
	echo "with-pg.sh: no free port found from $base" >&2
	exit 1
}

DATABASE_URL=$("$pg" url "$port" ledger)
export DATABASE_URL
echo "with-pg.sh: DATABASE_URL=$DATABASE_URL" >&2

rc=0
"$@" || rc=$?
exit "$rc"

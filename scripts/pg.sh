#!/usr/bin/env bash
# Local PostgreSQL cluster helper for development, tests and benchmarks.
#
#   pg.sh start DIR PORT [durable]   init (if needed) and start a cluster in DIR
#   pg.sh stop DIR                   stop the cluster in DIR (if running)
#   pg.sh url PORT [DB]              print the connection URL (DB defaults to ledger)
#   pg.sh replica PRIMARY_PORT DIR PORT [sync] [durable]
#                                    make DIR a streaming hot standby of the cluster
#                                    on PRIMARY_PORT (pg_basebackup -R) and start it;
#                                    with "sync" the primary waits for it on every
#                                    commit (synchronous_standby_names, synchronous_commit=on)
#   pg.sh kill DIR                   stop the cluster in DIR at once (pg_ctl stop -m immediate:
#                                    a crash, as a failover test wants)
#   pg.sh promote DIR                promote the standby in DIR to a primary (pg_ctl promote)
#
# The cluster lives in DIR/pgdata, logs to DIR/postgres.log and puts its Unix
# socket in DIR/sock. It listens on 127.0.0.1:PORT only, with trust auth for
# the superuser "ledger". Without "durable" it runs with fsync,
# synchronous_commit and full_page_writes off: fast, for throwaway test
# clusters only. With "durable" those stay on (make run, benchmarks).
#
# initdb/pg_ctl refuse to run as root, so when invoked as root they run as the
# "postgres" OS user and DIR is handed to that user.
#
# Exit codes: 0 ok, 1 error, 2 usage, 3 port already in use.
set -euo pipefail

PG_USER=ledger
INSTALL_HINT="install PostgreSQL: sudo apt-get install -y postgresql"

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() {
	echo "usage: pg.sh start DIR PORT [durable] | pg.sh stop DIR | pg.sh url PORT [DB]" >&2
	echo "       pg.sh replica PRIMARY_PORT DIR PORT [sync] [durable] | pg.sh kill DIR | pg.sh promote DIR" >&2
	exit 2
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a server-side PostgreSQL binary as the right OS user.
as_pg() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

find_bindir() {
	local d
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		# On Debian, pg_config may come from libpq-dev without a server.
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
		echo "$d"
		return 0
	fi
	if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
		dirname "$(command -v pg_ctl)"
		return 0
	fi
	return 1
}

ensure_bindir() {
	if BINDIR=$(find_bindir); then
		return 0
	fi
	if is_root && command -v apt-get >/dev/null 2>&1; then
		echo "pg.sh: PostgreSQL server not found; installing it with apt-get" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update >&2 && apt-get install -y --no-install-recommends postgresql >&2 ||
			echo "pg.sh: apt-get install postgresql failed" >&2
		if BINDIR=$(find_bindir); then
			return 0
		fi
	fi
	echo "$INSTALL_HINT" >&2
	exit 1
}

port_in_use() {
	# Succeeds if something accepts TCP connections on 127.0.0.1:$1.
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

abs_dir() {
	mkdir -p "$1"
	(cd "$1" && pwd -P)
}

# Make DIR and all its parents usable by the postgres OS user (root only).
prepare_dir_for_postgres() {
	local dir=$1 p
	chown postgres: "$dir"
	chmod 0700 "$dir"
	p=$(dirname "$dir")
	while :; do
		if ! runuser -u postgres -- test -x "$p"; then
			echo "pg.sh: granting search (o+x) permission on $p so the postgres user can reach $dir" >&2
			chmod o+x "$p"
		fi
		[ "$p" = / ] && break
		p=$(dirname "$p")
	done
}

is_running() {
	local data=$1
	[ -f "$data/PG_VERSION" ] || return 1
	as_pg "$BINDIR/pg_ctl" -D "$data" status >/dev/null 2>&1
}

running_port() {
	# Line 4 of postmaster.pid is the port.
	sed -n 4p "$1/postmaster.pid" 2>/dev/null || true
}

cmd_url() {
	[ $# -ge 1 ] && [ $# -le 2 ] || usage
	echo "postgres://${PG_USER}@127.0.0.1:$1/${2:-ledger}?sslmode=disable"
}

cmd_start() {
	[ $# -ge 2 ] && [ $# -le 3 ] || usage
	local dir port=$2 mode=${3:-}
	case "$port" in '' | *[!0-9]*) die "PORT must be a number, got '$port'" ;; esac
	case "$mode" in '' | durable) ;; *) die "third argument must be 'durable' or absent, got '$mode'" ;; esac
	case "$1" in *[[:space:]]*) die "DIR must not contain whitespace: '$1'" ;; esac
	ensure_bindir
	dir=$(abs_dir "$1")
	local data=$dir/pgdata sock=$dir/sock log=$dir/postgres.log
	case "$dir" in *[[:space:]]*) die "DIR must not contain whitespace: '$dir'" ;; esac

	if is_root; then
		prepare_dir_for_postgres "$dir"
	fi

	if is_running "$data"; then
		local rp
		rp=$(running_port "$data")
		if [ -n "$rp" ] && [ "$rp" != "$port" ]; then
			die "the cluster in $dir is already running on port $rp, not $port; run 'pg.sh stop $1' first"
		fi
		local want=fast
		[ "$mode" = durable ] && want=durable
		local have
		have=$(cat "$dir/mode" 2>/dev/null || echo unknown)
		if [ "$have" != "$want" ]; then
			echo "pg.sh: note: cluster in $dir is already running in '$have' mode (asked for '$want'); leaving it as is" >&2
		fi
		echo "pg.sh: PostgreSQL already running in $dir on port $port" >&2
	else
		if port_in_use "$port"; then
			echo "pg.sh: port $port on 127.0.0.1 is already in use by another process (not the cluster in $dir); stop it or pick another port" >&2
			exit 3
		fi
		if [ ! -f "$data/PG_VERSION" ]; then
			echo "pg.sh: initialising a new cluster in $data" >&2
			as_pg "$BINDIR/initdb" -D "$data" -U "$PG_USER" --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
				cat "$dir/initdb.log" >&2
				die "initdb failed"
			}
		fi
		mkdir -p "$sock"
		if is_root; then
			chown postgres: "$sock"
			# The log file may have been created by root earlier.
			[ -e "$log" ] && chown postgres: "$log"
		fi

		local opts="-c listen_addresses=127.0.0.1 -p $port -k $sock -c max_connections=400 -c shared_buffers=256MB"
		if [ "$mode" = durable ]; then
			# Checkpoints by time, not by the default 1 GB of WAL, as a
			# production server is set up: under sustained load the default
			# forced one every minute or so.
			opts="$opts -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_wal_size=4GB -c checkpoint_timeout=15min"
			echo durable >"$dir/mode"
		else
			opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
			echo fast >"$dir/mode"
		fi

		if ! as_pg "$BINDIR/pg_ctl" -D "$data" -l "$log" -w -t 60 -o "$opts" start >/dev/null; then
			echo "pg.sh: pg_ctl start failed; last lines of $log:" >&2
			tail -n 20 "$log" >&2 || true
			if grep -qE 'could not bind|Address already in use' "$log" 2>/dev/null &&
				! is_running "$data"; then
				exit 3
			fi
			exit 1
		fi
		echo "pg.sh: PostgreSQL started in $dir on 127.0.0.1:$port ($(cat "$dir/mode"))" >&2
	fi

	# A standby has its primary's databases and takes no writes.
	if [ -f "$data/standby.signal" ]; then
		return 0
	fi
	# Create the ledger database if missing.
	local exists
	exists=$("$BINDIR/psql" -X -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = 'ledger'")
	if [ "$exists" != 1 ]; then
		"$BINDIR/createdb" -h 127.0.0.1 -p "$port" -U "$PG_USER" ledger
		echo "pg.sh: created database ledger" >&2
	fi
}

cmd_stop() {
	[ $# -eq 1 ] || usage
	local dir=$1
	[ -d "$dir" ] || return 0
	dir=$(cd "$dir" && pwd -P)
	local data=$dir/pgdata
	[ -f "$data/PG_VERSION" ] || return 0
	BINDIR=$(find_bindir) || die "cannot find the PostgreSQL binaries to stop the cluster in $dir"
	if is_running "$data"; then
		as_pg "$BINDIR/pg_ctl" -D "$data" -m fast -w stop >/dev/null
		echo "pg.sh: PostgreSQL in $dir stopped" >&2
	fi
}

# psql as the superuser against 127.0.0.1:PORT.
psql_at() {
	local port=$1
	shift
	"$BINDIR/psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_USER" -d postgres -tAc "$@"
}

cmd_replica() {
	[ $# -ge 3 ] && [ $# -le 5 ] || usage
	local pport=$1 dir port=$3 sync= mode= a
	for a in "${@:4}"; do
		case "$a" in
		sync) sync=1 ;;
		durable) mode=durable ;;
		*) die "replica takes 'sync' and 'durable' after PORT, got '$a'" ;;
		esac
	done
	case "$pport$port" in '' | *[!0-9]*) die "PRIMARY_PORT and PORT must be numbers" ;; esac
	case "$2" in *[[:space:]]*) die "DIR must not contain whitespace: '$2'" ;; esac
	ensure_bindir
	dir=$(abs_dir "$2")
	local data=$dir/pgdata
	if is_root; then
		prepare_dir_for_postgres "$dir"
	fi
	if [ "$(psql_at "$pport" "SELECT pg_is_in_recovery()")" != f ]; then
		die "the cluster on port $pport is not a primary"
	fi
	# The standby's name on the primary: what synchronous_standby_names
	# lists and pg_stat_replication shows.
	local name
	name="standby_$port"
	if [ ! -f "$data/PG_VERSION" ]; then
		echo "pg.sh: copying the cluster on port $pport into $data (pg_basebackup -R)" >&2
		# -R writes standby.signal and primary_conninfo (with the
		# application_name given here) into the copy; -X stream copies the
		# WAL written meanwhile, -c fast checkpoints at once.
		as_pg "$BINDIR/pg_basebackup" -d "host=127.0.0.1 port=$pport user=$PG_USER application_name=$name" \
			-D "$data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 || {
			cat "$dir/basebackup.log" >&2
			die "pg_basebackup failed"
		}
	fi
	[ -f "$data/standby.signal" ] || die "$data is not a standby (no standby.signal); remove $dir to make a new one"
	if [ -n "$sync" ]; then
		# Every commit on the primary then waits until this standby has
		# flushed it, so a promoted standby holds every acknowledged
		# command. ALTER SYSTEM is overridden by a -c on the primary's
		# command line: start it durable (pg.sh start DIR PORT durable).
		psql_at "$pport" "ALTER SYSTEM SET synchronous_standby_names = '\"$name\"'" >/dev/null
		psql_at "$pport" "SELECT pg_reload_conf()" >/dev/null
		if [ "$(psql_at "$pport" "SHOW synchronous_commit")" = off ]; then
			echo "pg.sh: warning: synchronous_commit is off on the primary (a fast cluster): commits will not wait for the standby; start the primary durable" >&2
		fi
	fi
	# The standby starts as any cluster does (its copied postgresql.auto.conf
	# and standby.signal make it replay); hot_standby lets it serve reads.
	cmd_start "$dir" "$port" $mode
	echo "pg.sh: hot standby $name of port $pport running in $dir on 127.0.0.1:$port${sync:+ (synchronous)}" >&2
}

cmd_kill() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(cd "$1" && pwd -P) || die "no such directory: $1"
	BINDIR=$(find_bindir) || die "cannot find the PostgreSQL binaries"
	if is_running "$dir/pgdata"; then
		as_pg "$BINDIR/pg_ctl" -D "$dir/pgdata" -m immediate -w stop >/dev/null
		echo "pg.sh: PostgreSQL in $dir killed (immediate stop)" >&2
	fi
}

cmd_promote() {
	[ $# -eq 1 ] || usage
	local dir
	dir=$(cd "$1" && pwd -P) || die "no such directory: $1"
	BINDIR=$(find_bindir) || die "cannot find the PostgreSQL binaries"
	as_pg "$BINDIR/pg_ctl" -D "$dir/pgdata" -w promote >/dev/null
	echo "pg.sh: standby in $dir promoted to primary" >&2
}

[ $# -ge 1 ] || usage
sub=$1
shift
case "$sub" in
start) cmd_start "$@" ;;
stop) cmd_stop "$@" ;;
url) cmd_url "$@" ;;
replica) cmd_replica "$@" ;;
kill) cmd_kill "$@" ;;
promote) cmd_promote "$@" ;;
*) usage ;;
esac

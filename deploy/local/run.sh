#!/usr/bin/env bash
# Runs Kohaku's whole pipeline on this machine (`make run`): builds kohaku-writer and
# kohaku-receiver into bin/, starts the writer (which creates the database when missing,
# migrates it and uses TimescaleDB when the server offers it), waits until it is ready,
# starts the receiver, waits again, and prints where Sora should send its stats: the
# sora.conf lines of the stats webhook (Sora 2025.1 and later) and of the stats exporter
# (older Sora). Ctrl-C stops the receiver first (requests in flight still get their
# PubAck), then the writer (the batch in hand is committed, then the embedded JetStream
# stops).
#
# JetStream: a NATS server with JetStream that already answers at KOHAKU_NATS_URL (default
# nats://127.0.0.1:4222) is used. When none answers and KOHAKU_NATS_URL is not set, the
# writer embeds one at KOHAKU_EMBEDDED_NATS_LISTEN (default 127.0.0.1:4222). Force the choice
# with KOHAKU_EMBEDDED_NATS=true or false; an address that is taken is reported, not waited on.
#
# Every KOHAKU_* variable of the two programs applies (README.md lists them), except
# KOHAKU_ADMIN_LISTEN, which the two would share; this script sets it from
#   KOHAKU_LOCAL_RECEIVER_ADMIN_LISTEN  the receiver's /healthz /readyz /metrics (default :5891)
#   KOHAKU_LOCAL_WRITER_ADMIN_LISTEN    the writer's (default :5892)
# and also reads
#   KOHAKU_LOCAL_BIN                    where to build the programs (default bin/ of the checkout)
#   KOHAKU_LOCAL_READY_TIMEOUT          seconds to wait for each /readyz (default 120)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${KOHAKU_LOCAL_BIN:-$root/bin}
receiver_admin=${KOHAKU_LOCAL_RECEIVER_ADMIN_LISTEN:-:5891}
writer_admin=${KOHAKU_LOCAL_WRITER_ADMIN_LISTEN:-:5892}
ready_timeout=${KOHAKU_LOCAL_READY_TIMEOUT:-120}
listen=${KOHAKU_LISTEN:-:5890}

say() { printf 'kohaku-local: %s\n' "$*"; }
die() {
	say "$*" >&2
	exit 1
}

# reachable ADDR prints "HOST PORT" to connect to a listen address from this machine: an
# empty or wildcard host means loopback.
reachable() {
	local host=${1%:*} port=${1##*:}
	host=${host#[}
	host=${host%]}
	case $host in "" | 0.0.0.0 | ::) host=127.0.0.1 ;; esac
	printf '%s %s\n' "$host" "$port"
}

# answers HOST PORT succeeds when something accepts TCP connections there.
answers() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

# nats_info HOST PORT prints the INFO line that a NATS server sends first.
nats_info() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r -t 2 l <&3 && printf "%s\n" "$l"' _ "$1" "$2" 2>/dev/null; }

# http_status HOST PORT PATH prints the status code of a GET (HTTP/1.0: no curl needed).
http_status() {
	timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3 &&
		read -r _ code _ <&3 && printf "%s\n" "$code"' _ "$1" "$2" "$3" 2>/dev/null
}

[ -z "${KOHAKU_ADMIN_LISTEN:-}" ] ||
	die "KOHAKU_ADMIN_LISTEN would give both programs one port: set KOHAKU_LOCAL_RECEIVER_ADMIN_LISTEN and KOHAKU_LOCAL_WRITER_ADMIN_LISTEN instead"

# The first server of KOHAKU_NATS_URL, without scheme, credentials or path.
nats_url=${KOHAKU_NATS_URL:-nats://127.0.0.1:4222}
nats_hostport=${nats_url%%,*}
nats_hostport=${nats_hostport#*://}
nats_hostport=${nats_hostport##*@}
nats_hostport=${nats_hostport%%/*}
[[ $nats_hostport == *:* ]] || nats_hostport=$nats_hostport:4222
read -r nats_host nats_port < <(reachable "$nats_hostport")

embedded_listen=${KOHAKU_EMBEDDED_NATS_LISTEN:-127.0.0.1:4222}
mode=${KOHAKU_EMBEDDED_NATS:-auto}
case ${mode,,} in
1 | t | true) mode=embedded ;;
0 | f | false) mode=external ;;
auto) ;;
*) die "KOHAKU_EMBEDDED_NATS=$mode: want true, false or unset" ;;
esac
if [ "$mode" != embedded ]; then
	info=$(nats_info "$nats_host" "$nats_port" || true)
	if [[ $info == INFO* && $info == *'"jetstream":true'* ]]; then
		mode=external
		say "using the NATS server that answers at $nats_host:$nats_port (KOHAKU_NATS_URL); KOHAKU_EMBEDDED_NATS=true embeds one in the writer instead"
	elif [[ $info == INFO* ]]; then
		die "the NATS server at $nats_host:$nats_port has no JetStream: enable it (nats-server -js), or set KOHAKU_EMBEDDED_NATS=true and KOHAKU_EMBEDDED_NATS_LISTEN to a free address"
	elif [ "$mode" = external ] || [ -n "${KOHAKU_NATS_URL:-}" ]; then
		die "no NATS server answers at $nats_host:$nats_port (KOHAKU_NATS_URL); unset KOHAKU_NATS_URL and KOHAKU_EMBEDDED_NATS to embed JetStream in the writer"
	else
		mode=embedded
	fi
fi
if [ "$mode" = embedded ]; then
	read -r emb_host emb_port < <(reachable "$embedded_listen")
	if answers "$emb_host" "$emb_port"; then
		die "port $emb_host:$emb_port for the embedded JetStream (KOHAKU_EMBEDDED_NATS_LISTEN) is taken; if a NATS server with JetStream runs there, leave KOHAKU_EMBEDDED_NATS unset to use it, or choose another address, e.g. KOHAKU_EMBEDDED_NATS_LISTEN=127.0.0.1:4223"
	fi
	export KOHAKU_EMBEDDED_NATS=true KOHAKU_EMBEDDED_NATS_LISTEN=$embedded_listen
	export KOHAKU_EMBEDDED_NATS_DIR=${KOHAKU_EMBEDDED_NATS_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/kohaku/nats}
	mkdir -p "$KOHAKU_EMBEDDED_NATS_DIR"
	receiver_nats=nats://$emb_host:$emb_port
	say "embedding JetStream in the writer at $embedded_listen, data in $KOHAKU_EMBEDDED_NATS_DIR"
else
	export KOHAKU_EMBEDDED_NATS=false
	receiver_nats=$nats_url
fi

say "building kohaku-writer and kohaku-receiver into $bin"
mkdir -p "$bin"
(cd "$root" && GOEXPERIMENT=simd go build -o "$bin/" ./receiver/... ./writer/...) # as released: README "Build"

writer_pid=
receiver_pid=
interrupted=
trap 'interrupted=1' INT TERM

# stop PID NAME sends SIGTERM and waits for the graceful exit.
stop() {
	[ -n "$1" ] || return 0
	local code=0
	if kill -0 "$1" 2>/dev/null; then
		say "stopping $2"
		kill -TERM "$1" 2>/dev/null || true
	fi
	wait "$1" || code=$?
	[ "$code" -eq 0 ] || say "$2 exited with status $code"
	return "$code"
}

shutdown() {
	# A second Ctrl-C ends both programs at once.
	trap 'kill -KILL $receiver_pid $writer_pid 2>/dev/null || true' INT TERM
	local code=0
	# The receiver first: the writer may host the JetStream it publishes to.
	stop "$receiver_pid" kohaku-receiver || code=1
	stop "$writer_pid" kohaku-writer || code=1
	return "$code"
}

# start NAME ADMIN_LISTEN [VAR=VALUE...] runs bin/NAME in its own process group (so that
# Ctrl-C reaches this script only, which stops the programs in order) and sets pid.
start() {
	local name=$1 admin=$2
	shift 2
	set -m
	env KOHAKU_ADMIN_LISTEN="$admin" "$@" "$bin/$name" &
	pid=$!
	set +m
	say "$name started (pid $pid)"
}

# ready PID NAME ADMIN_LISTEN waits until /readyz answers 200.
ready() {
	local host port deadline=$((SECONDS + ready_timeout))
	read -r host port < <(reachable "$3")
	until [ "$(http_status "$host" "$port" /readyz || true)" = 200 ]; do
		[ -z "$interrupted" ] || return 1
		kill -0 "$1" 2>/dev/null || {
			say "$2 exited before it was ready" >&2
			return 1
		}
		[ "$SECONDS" -lt "$deadline" ] || {
			say "$2 not ready after ${ready_timeout}s: $(http_status "$host" "$port" /readyz || echo no answer) at http://$host:$port/readyz" >&2
			return 1
		}
		sleep 0.2 &
		wait $! || true
	done
}

start kohaku-writer "$writer_admin"
writer_pid=$pid
if ! ready "$writer_pid" kohaku-writer "$writer_admin"; then
	shutdown || true
	exit 1
fi
start kohaku-receiver "$receiver_admin" KOHAKU_NATS_URL="$receiver_nats"
receiver_pid=$pid
if ! ready "$receiver_pid" kohaku-receiver "$receiver_admin"; then
	shutdown || true
	exit 1
fi

read -r host port < <(reachable "$listen")
read -r rhost rport < <(reachable "$receiver_admin")
read -r whost wport < <(reachable "$writer_admin")
database=${KOHAKU_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/kohaku?sslmode=disable}
database=$(printf '%s' "$database" | sed -E 's#(://[^:/@]*):[^@/]*@#\1@#; s#\?.*##') # no password, no options
scheme=http
[ -z "${KOHAKU_TLS_CERT_FILE:-}" ] || scheme=https
base=$scheme://$host:$port
webhook_url=$base${KOHAKU_STATS_WEBHOOK_PATH:-/stats-webhook}
collector_url=$base/collector
# The two sora.conf lines, their comments aligned.
webhook_line="stats_webhook_url = $webhook_url"
collector_line="stats_collector_url = $collector_url"
width=$((${#webhook_line} > ${#collector_line} ? ${#webhook_line} : ${#collector_line}))
sim_auth=
[ -z "${KOHAKU_BASIC_AUTH_USER:-}" ] || sim_auth=" --basic-auth $KOHAKU_BASIC_AUTH_USER:PASSWORD"
printf '\nKohaku is ready. Point Sora at it (sora.conf):\n'
printf '  %-*s  # Sora 2025.1 and later\n' "$width" "$webhook_line"
printf '  %-*s  # older Sora (stats exporter)\n' "$width" "$collector_line"
[ -z "${KOHAKU_BASIC_AUTH_USER:-}" ] ||
	printf '  and HTTP Basic authentication as user %s with its password (webhook_basic_authn_* in sora.conf)\n' "$KOHAKU_BASIC_AUTH_USER"
cat <<EOF
  (from another machine, use this machine's address instead of $host)
  no Sora at hand:  go run ./tools/cmd/sora-sim --feed webhook --url $webhook_url$sim_auth --connections 50
                    (the older exporter: --feed exporter --url $collector_url)
  database:         $database (views kohaku_inbound_rtp_1m, kohaku_outbound_rtp_1m)
  metrics:          http://$rhost:$rport/metrics (receiver), http://$whost:$wport/metrics (writer)
  Grafana:          the dashboards in deploy/grafana/dashboards read that database; \`docker compose up\`
                    runs the whole stack with Grafana on port 3000
Ctrl-C stops both.

EOF

# Wait for Ctrl-C (or SIGTERM), or for either program to end by itself.
code=0
while [ -z "$interrupted" ]; do
	if ! kill -0 "$writer_pid" 2>/dev/null || ! kill -0 "$receiver_pid" 2>/dev/null; then
		say "a program ended by itself; stopping the other" >&2
		code=1
		break
	fi
	sleep 1 &
	wait $! || true
done
shutdown || code=1
[ "$code" -ne 0 ] || say "stopped"
exit "$code"

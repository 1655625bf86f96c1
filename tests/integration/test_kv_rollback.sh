#!/bin/sh
# test_kv_rollback.sh - every capsule server of a running KVS is restored
# from a backup taken before some acknowledged durable puts; the workers
# must say so.  Real processes on loopback: 3 servers (N=3, W=2), a
# router, the owner's broker, 2 workers, then a third started late.
#
#  1. durable puts, then the servers are restarted with their stores
#     intact: no worker may call that a rollback;
#  2. more durable puts, acknowledged; the servers are stopped, restored
#     from the backup and started: both running workers log ROLLBACK
#     naming a server and count it in `kv status` (servers_rolled_back);
#     and no durable put is acknowledged after it;
#  3. a worker started afterwards learns from its peers' signed heads
#     that records exist which no server holds, and logs it (the gap
#     notice) instead of waiting for them forever.
#
# Usage: test_kv_rollback.sh SCL
set -u
SCL=$(readlink -f "$1")
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-kvrollback-XXXXXX")
fails=0
checks=0
pids=""

ok() { checks=$((checks + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }
cleanup() {
	for p in $pids $spids; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ "$fails" = 0 ] && [ -z "${KEEP:-}" ] && rm -rf "$T" || echo "kept $T for inspection" >&2
}
trap cleanup EXIT

PORT=$(( 28000 + ($$ % 200) * 20 ))	# below the ephemeral ports (32768-); apart from other tests
ep() { echo "tcp://127.0.0.1:$((PORT + $1))"; }
S1=$(ep 1) S2=$(ep 2) S3=$(ep 3) ROUTER=$(ep 4) BROKER=$(ep 5)
SERVERS="$S1,$S2,$S3"
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
wait_log() { # file pattern [tenths of a second]
	for _ in $(seq "${3:-400}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

spids=""
start_servers() {
	spids=""
	for i in 1 2 3; do
		eval "me=\$S$i"
		peers=$(for j in 1 2 3; do [ "$j" != "$i" ] && eval "printf '%s,' \$S$j"; done)
		rm -f "$T/ready-s$i"
		"$SCL" server --listen "$me" --data "$T/s$i" --peers "${peers%,}" \
			--ready-file "$T/ready-s$i" 2>>"$T/s$i.log" &
		spids="$spids $!"
	done
	for i in 1 2 3; do wait_file "$T/ready-s$i" || bad "server $i did not start"; done
}
stop_servers() {
	for p in $spids; do kill -TERM "$p"; done
	for p in $spids; do wait "$p" 2>/dev/null; done
}

export SCL_HOME="$T/owner"
start_servers
"$SCL" router --listen "$ROUTER" --ready-file "$T/ready-r" 2>>"$T/router.log" &
pids="$pids $!"
wait_file "$T/ready-r" || bad "router did not start"
"$SCL" keys gen --out "$T/owner.key" >/dev/null
"$SCL" keys gen --out "$T/platform.key" >/dev/null
name=$("$SCL" capsule create --servers "$SERVERS" --owner-key "$T/owner.key" \
	--label kv-rollback 2>/dev/null | tail -n 1)
printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok || bad "create: $name"
"$SCL" keys serve "$name" --listen "$BROKER" --allow "$("$SCL" keys measure)" \
	--trust-platform "$("$SCL" keys show "$T/platform.key")" >"$T/broker.log" 2>&1 &
pids="$pids $!"
wait_log "$T/broker.log" serving || bad "broker did not start"

start_worker() { # n
	SCL_HOME="$T/home-w$1" "$SCL" worker --capsule "$name" \
		--broker "$BROKER" --platform-key "$T/platform.key" \
		--servers "$SERVERS" --router "$ROUTER" --listen "$(ep $((5 + $1)))" \
		>"$T/w$1.log" 2>&1 &
	pids="$pids $!"
	wait_log "$T/w$1.log" "serving clients" ||
		bad "worker $1 did not start: $(tail -n 3 "$T/w$1.log")"
}
kv() { # worker args...
	w=$1
	shift
	"$SCL" kv "$@" --worker "$(ep $((5 + w)))" --timeout-ms 15000
}
status_field() { # worker field
	kv "$1" status 2>/dev/null | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
puts() { # prefix: 20 durable puts on worker 1
	n=0
	for j in $(seq 20); do
		kv 1 put "$1/$j" "v$j" >/dev/null 2>&1 && n=$((n + 1))
	done
	[ "$n" = 20 ] && ok || bad "$n of 20 durable puts of $1 acknowledged"
}
for w in 1 2; do start_worker "$w"; done

# --- 1. a restart is not a rollback -------------------------------------------
puts a
sleep 1.5		# a durable poll sees every server's head
stop_servers
for i in 1 2 3; do cp -a "$T/s$i" "$T/backup$i"; done
start_servers
puts b
sleep 1.5
if grep -q ROLLBACK "$T/w1.log" "$T/w2.log"; then
	bad "a restart of intact servers was called a rollback: $(grep -h ROLLBACK "$T"/w*.log)"
else
	ok
fi

# --- 2. every server restored from the backup ---------------------------------
stop_servers
for i in 1 2 3; do rm -rf "$T/s$i"; cp -a "$T/backup$i" "$T/s$i"; done
start_servers
for w in 1 2; do
	wait_log "$T/w$w.log" "ROLLBACK: server tcp://127.0.0.1:[0-9]* serves writer" 100 &&
		ok || bad "worker $w did not report the rollback: $(tail -n 5 "$T/w$w.log")"
	[ "$(status_field "$w" servers_rolled_back)" -ge 1 ] 2>/dev/null && ok ||
		bad "worker $w status: $(kv "$w" status 2>&1 | head -c 600)"
done

# The writer's chain now runs past what the servers hold: nothing more of
# it can be stored, so no durable put may be acknowledged.
if "$SCL" kv put c/1 v1 --worker "$(ep 6)" --timeout-ms 3000 >"$T/put-c" 2>&1; then
	bad "a durable put was acknowledged on servers that cannot hold it: $(cat "$T/put-c")"
else
	ok
fi

# --- 3. a worker started late learns of records no server holds ---------------
start_worker 3
wait_log "$T/w3.log" "are on no server" 300 && ok ||
	bad "worker 3 did not report the missing records: $(tail -n 5 "$T/w3.log")"

echo "test_kv_rollback: $checks checks, $fails failed"
[ "$fails" = 0 ]

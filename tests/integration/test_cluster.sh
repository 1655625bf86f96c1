#!/bin/sh
# test_cluster.sh - three real capsule servers on loopback, N=3 W=2.
#
#  1. Appends run in a loop while one server is killed with SIGKILL and
#     restarted: every acknowledged record must then read back from every
#     server alone, and all three must verify with identical heads within
#     5 s of the restart.
#  2. Servers that lie (flipped bytes, dropped records, garbage, a stale
#     head) are put first in the client's list: reads must still return
#     exactly the honest records, and the liar must be named.
#  3. No server's files contain a plaintext canary.
#
# Usage: test_cluster.sh SCL LIAR
set -u
SCL=$1
LIAR=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-cluster-XXXXXX")
export SCL_HOME="$T/home"
BASE=$(( 20000 + ($$ % 200) * 20 ))	# below the ephemeral ports; apart from other tests
fails=0
checks=0
pids=""

ok() { checks=$((checks + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	[ "$fails" = 0 ] && rm -rf "$T" || echo "kept $T for inspection" >&2
}
trap cleanup EXIT
now_ms() { date +%s%3N; }

addr() { echo "tcp://127.0.0.1:$((BASE + $1))"; }
ALL="$(addr 1),$(addr 2),$(addr 3)"

start_server() {
	i=$1
	peers=$(for j in 1 2 3; do [ "$j" != "$i" ] && printf '%s,' "$(addr "$j")"; done)
	rm -f "$T/ready$i"
	"$SCL" server --listen "$(addr "$i")" --data "$T/s$i" \
		--peers "${peers%,}" --ready-file "$T/ready$i" \
		2>>"$T/s$i.log" &
	eval "pid$i=$!"
	pids="$pids $!"
	for _ in $(seq 100); do [ -s "$T/ready$i" ] && return 0; sleep 0.05; done
	bad "server $i did not start"; cat "$T/s$i.log" >&2
}

for i in 1 2 3; do start_server "$i"; done
name=$("$SCL" capsule create --servers "$ALL" --label cluster-test | tail -n 1)
printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok || bad "create: $name"
"$SCL" capsule inspect "$name" | grep -q "replicas N=3 W=2" && ok ||
	bad "metadata lacks N=3 W=2"

# --- 1. load, kill -9, restart ----------------------------------------------
: >"$T/acked.txt"
(
	k=0
	while [ ! -e "$T/stop" ]; do
		k=$((k + 1))
		seq 1 40 | sed "s/^/load-$k-/" >"$T/in.$k"
		out=$("$SCL" capsule append "$name" --batch 8 --file "$T/in.$k" 2>&1)
		if [ $? = 0 ]; then
			cat "$T/in.$k" >>"$T/acked.txt"
		else
			n=$(printf '%s' "$out" | sed -n 's/.*; \([0-9]*\) records were acknowledged.*/\1/p')
			head -n "${n:-0}" "$T/in.$k" >>"$T/acked.txt"
			echo "append $k: $out" >>"$T/append-failures.log"
		fi
	done
) &
loader=$!
sleep 1.5
kill -9 "$pid2"
echo "killed server 2 (pid $pid2) with SIGKILL" >>"$T/events.log"
# Server 2 must miss appends while it is down (else there is nothing for
# it to pull): wait until two more appends were acknowledged without it,
# however slow this machine is.
before=$(wc -l <"$T/acked.txt")
for _ in $(seq 200); do
	[ $(( $(wc -l <"$T/acked.txt") - before )) -ge 80 ] && break
	sleep 0.05
done
sleep 0.5
start_server 2
restart=$(now_ms)
sleep 1.5
touch "$T/stop"
wait "$loader"
lines=$(wc -l <"$T/acked.txt")
[ "$lines" -gt 200 ] && ok || bad "only $lines records acknowledged under load"
converged=""
while [ $(( $(now_ms) - restart )) -lt 8000 ]; do
	if "$SCL" capsule verify "$name" >"$T/verify.txt" 2>&1; then
		converged=$(( $(now_ms) - restart ))
		break
	fi
	sleep 0.1
done
if [ -n "$converged" ] && [ "$converged" -le 5000 ]; then
	ok
	echo "all three servers verified with identical heads ${converged} ms after the restart"
else
	bad "servers did not converge within 5 s of the restart: $(cat "$T/verify.txt")"
fi
grep -q "3 of 3 servers hold every writer's newest head" "$T/verify.txt" && ok ||
	bad "verify: $(cat "$T/verify.txt")"
"$SCL" server status "$(addr 2)" >"$T/status2.json"; grep -q "pulled records" "$T/s2.log" && ok || bad "server 2 never pulled from its peers: $(cat "$T/status2.json")"
sort "$T/acked.txt" >"$T/acked.sorted"
for i in 1 2 3; do
	"$SCL" capsule read "$name" --servers "$(addr "$i")" >"$T/read$i.txt" 2>"$T/read$i.err" ||
		bad "read from server $i: $(cat "$T/read$i.err")"
	sort "$T/read$i.txt" >"$T/read$i.sorted"
	lost=$(comm -23 "$T/acked.sorted" "$T/read$i.sorted" | wc -l)
	[ "$lost" = 0 ] && ok || bad "server $i lacks $lost acknowledged records"
done
cmp -s "$T/read1.txt" "$T/read2.txt" && cmp -s "$T/read1.txt" "$T/read3.txt" &&
	ok || bad "servers return different records"
echo "load: $lines acknowledged records, 0 lost, on every server"

# --- 2. lying servers ------------------------------------------------------------
for mode in flip drop garbage stale; do
	port=$((BASE + 10))
	"$LIAR" "$mode" "tcp://127.0.0.1:$port" "$(addr 1)" &
	liar=$!
	pids="$pids $liar"
	if [ "$mode" = stale ]; then
		# Let the liar see (and keep) the current head, then grow.
		"$SCL" capsule verify "$name" --servers "tcp://127.0.0.1:$port" \
			>/dev/null 2>&1
		seq 1 30 | sed 's/^/after-stale-/' |
			"$SCL" capsule append "$name" --batch 10 >/dev/null ||
			bad "append while a stale liar exists"
		"$SCL" capsule read "$name" --servers "$(addr 1)" >"$T/read1.txt"
	fi
	"$SCL" capsule read "$name" --servers "tcp://127.0.0.1:$port,$(addr 2),$(addr 3)" \
		>"$T/liar.txt" 2>"$T/liar.err"
	rc=$?
	[ "$rc" = 0 ] && cmp -s "$T/liar.txt" "$T/read1.txt" && ok ||
		bad "$mode liar: read rc=$rc, output differs: $(head -c 300 "$T/liar.err")"
	if [ "$mode" != stale ]; then
		grep -q "server tcp://127.0.0.1:$port" "$T/liar.err" && ok ||
			bad "$mode liar not named: $(cat "$T/liar.err")"
	fi
	"$SCL" capsule verify "$name" --servers "tcp://127.0.0.1:$port,$(addr 2),$(addr 3)" \
		>"$T/liarv.txt" 2>&1
	[ $? != 0 ] && grep -q "tcp://127.0.0.1:$port: \(FAILED\|NO ANSWER\|ok: .*BEHIND\)" "$T/liarv.txt" &&
		ok || bad "$mode liar passed verify: $(cat "$T/liarv.txt")"
	echo "$mode liar: caught; $(grep -m1 "tcp://127.0.0.1:$port" "$T/liarv.txt")"
	kill -9 "$liar" 2>/dev/null
	wait "$liar" 2>/dev/null
done

# --- 3. no plaintext on any server's disk ---------------------------------------
canary="CANARY-cluster-5f2a-never-on-disk"
echo "$canary" | "$SCL" capsule append "$name" >/dev/null || bad "canary append"
sleep 0.5
if grep -rqF "$canary" "$T/s1" "$T/s2" "$T/s3"; then
	bad "plaintext canary found in a server's files"
else
	ok
fi
grep -rqF "cluster-test" "$T/s1/store" && ok || bad "canary search cannot see the label"

echo "test_cluster: $checks checks, $fails failed"
[ "$fails" = 0 ]

#!/bin/sh
# demo.sh - SCL end to end on this machine: a DataCapsule created,
# written, read back and verified, a membership proof checked with only
# the name, then a copy of the store with one byte changed on disk,
# rejected with the record and the reason named.
#
# Usage: demo.sh SCL FLIPBYTE   (make demo passes the release build)
set -eu
SCL=$(readlink -f "$1")
FLIP=$(readlink -f "$2")
W=$(mktemp -d "${TMPDIR:-/tmp}/scl-demo-XXXXXX")
trap 'rm -rf "$W"' EXIT
export SCL_HOME="$W/home"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# wait_log FILE TEXT: until FILE mentions TEXT; after 20 s, show FILE, fail.
wait_log() {
	for _ in $(seq 400); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "TIMED OUT waiting for '$2' in $1:" >&2
	cat "$1" >&2
	exit 1
}
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. An owner identity and a DataCapsule"
run "$SCL" keys gen --out "$W/owner.key"
name=$("$SCL" capsule create --label "demo orders" --owner-key "$W/owner.key" |
	tee -a /dev/stderr | tail -n 1)
owner=$("$SCL" keys show "$W/owner.key")

step "2. Append 1000 order events, one signed heartbeat per 64"
i=1
while [ $i -le 1000 ]; do
	echo "order $i: $((i * 7 % 13 + 1)) x widget-$((i % 17))"
	i=$((i + 1))
done >"$W/orders.txt"
run "$SCL" capsule append "$name" --batch 64 --file "$W/orders.txt"

step "3. Read records 998..1000 back (each verified before it is printed)"
run "$SCL" capsule read "$name" --from 998 --to 1000
"$SCL" capsule read "$name" | cmp -s - "$W/orders.txt"
echo "all 1000 payloads read back identical to the input"

step "4. Verify everything"
run "$SCL" capsule verify "$name"

step "5. What a key-less server sees"
run "$SCL" capsule inspect "$name" | sed -n '1,12p'
if grep -q "widget" "$SCL_HOME/store/data.mdb"; then
	echo "PLAINTEXT FOUND ON DISK" >&2
	exit 1
fi
echo "(no plaintext in $SCL_HOME/store/data.mdb)"

step "6. A membership proof, checked with nothing but the name"
"$SCL" capsule prove "$name" 500 >"$W/r500.proof"
echo "proof of record 500: $(wc -c <"$W/r500.proof") bytes"
run "$SCL" capsule check-proof "$name" --file "$W/r500.proof"

step "7. An attacker flips one byte of record 5 on a copy of the disk"
cp -r "$SCL_HOME" "$W/tampered"
# Record 5's header holds capsule, writer, seqno 5; 8 bytes past the
# seqno is its Lamport time.
off=$("$FLIP" "$W/tampered/store/data.mdb" "${name}${owner}0500000000000000" 72)
echo "flipped the byte at offset $off of tampered/store/data.mdb"
printf '$ scl capsule verify %s --dir tampered\n' "$name"
rc=0
"$SCL" capsule verify "$name" --dir "$W/tampered" || rc=$?
if [ "$rc" -eq 0 ]; then
	echo "TAMPERING WENT UNDETECTED" >&2
	exit 1
fi
echo "(exit status $rc: rejected, with the record and the reason named)"
printf '$ scl capsule read %s --dir tampered --from 1 --to 10\n' "$name"
if "$SCL" capsule read "$name" --dir "$W/tampered" --from 1 --to 10 \
	>"$W/leaked.txt"; then
	echo "TAMPERED RECORD WAS SERVED" >&2
	exit 1
fi
echo "(nothing unverified was printed: $(wc -l <"$W/leaked.txt") lines)"
run "$SCL" capsule verify "$name"

# --- Capsule servers ---------------------------------------------------------
# Below the kernel's ephemeral ports (32768 and up), where outgoing
# connections would collide with our listeners.
PORT=$(( 20000 + ($$ % 600) * 20 ))
addr() { echo "tcp://127.0.0.1:$((PORT + $1))"; }
SERVERS="$(addr 1),$(addr 2),$(addr 3)"
pids=""
# Every service stops on SIGTERM within 10 s, or the demo fails naming it.
cleanup() {
	rc=$?
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for _ in $(seq 100); do
		left=""
		for p in $pids; do
			st=$(ps -o stat= -p "$p" 2>/dev/null) || continue
			[ "${st#Z}" = "$st" ] && left="$left $p"
		done
		[ -z "$left" ] && break
		sleep 0.1
	done
	for p in $left; do
		echo "STILL RUNNING 10 s after SIGTERM: $(ps -o args= -p "$p" | cut -c1-60)" >&2
		kill -9 "$p" 2>/dev/null || true
		rc=1
	done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$W"
	exit "$rc"
}
trap cleanup EXIT
start_server() {
	peers=$(for j in 1 2 3; do if [ "$j" != "$1" ]; then printf '%s,' "$(addr "$j")"; fi; done)
	rm -f "$W/ready$1"
	"$SCL" server --listen "$(addr "$1")" --data "$W/server$1" \
		--peers "${peers%,}" --ready-file "$W/ready$1" 2>>"$W/server$1.log" &
	eval "pid$1=$!"
	pids="$pids $!"
	wait_log "$W/ready$1" tcp
}

step "8. Three untrusted capsule servers, a capsule replicated on them (N=3, W=2)"
for i in 1 2 3; do start_server "$i"; echo "server $i listening on $(addr "$i")"; done
name2=$("$SCL" capsule create --label "replicated orders" --servers "$SERVERS" \
	--owner-key "$W/owner.key" | tee -a /dev/stderr | tail -n 1)

step "9. Appends under load; server 2 is killed with SIGKILL mid-write and restarted"
(
	k=0
	while [ ! -e "$W/stop" ]; do
		k=$((k + 1))
		seq 1 100 | sed "s/^/shipment $k-/" >"$W/batch$k.txt"
		if "$SCL" capsule append "$name2" --batch 25 \
			--file "$W/batch$k.txt" >>"$W/acks.log" 2>&1; then
			cat "$W/batch$k.txt" >>"$W/acked.txt"
		fi
	done
) &
loader=$!
sleep 1
kill -9 "$pid2"
echo "killed server 2 (SIGKILL) while appends were running"
sleep 1
start_server 2
echo "restarted server 2; it catches up from its peers by itself"
sleep 1
touch "$W/stop"
wait "$loader"
echo "$(wc -l <"$W/acked.txt") records acknowledged by a write quorum"
sleep 1
grep "pulled records" "$W/server2.log" | tail -n 2 || true

step "10. Every record verified from every server, each on its own"
run "$SCL" capsule verify "$name2"
for i in 1 2 3; do
	"$SCL" capsule read "$name2" --servers "$(addr "$i")" | sort >"$W/from$i.txt"
	sort "$W/acked.txt" | comm -23 - "$W/from$i.txt" >"$W/lost$i.txt"
	echo "server $i: $(wc -l <"$W/from$i.txt") records read and verified, $(wc -l <"$W/lost$i.txt") acknowledged records missing"
	[ -s "$W/lost$i.txt" ] && { echo "ACKNOWLEDGED RECORDS LOST" >&2; exit 1; }
done
for i in 1 2 3; do
	if grep -rqF "shipment" "$W/server$i"; then
		echo "PLAINTEXT ON SERVER $i" >&2
		exit 1
	fi
done
echo "(no plaintext in any server's files)"
"$SCL" server status "$(addr 2)" |
	sed 's/.*"appends":\([0-9]*\).*"gaps":\([0-9]*\).*"pulled_records":\([0-9]*\).*"pulled_records":\([0-9]*\).*/server 2 since its restart: \1 appends from clients, \2 answered GAP, \3 + \4 records pulled from peers/'

# --- The worker: an attested trusted core ------------------------------------
step "11. The owner's key broker admits only this scl binary, on a trusted platform"
"$SCL" keys gen --out "$W/platform.key" >/dev/null
BROKER="tcp://127.0.0.1:$((PORT + 10))"
: >"$W/broker.log"
"$SCL" keys serve "$name2" --listen "$BROKER" --allow "$("$SCL" keys measure)" \
	--trust-platform "$("$SCL" keys show "$W/platform.key")" \
	>"$W/broker.log" 2>&1 &
pids="$pids $!"
wait_log "$W/broker.log" serving
sed -n 's/^key broker/key broker/p' "$W/broker.log"
echo "(measurement allowed: $("$SCL" keys measure | cut -c1-16)..., the BLAKE2b of this scl binary)"

step "12. A worker on another host: its core (own process, seccomp) is attested, then seals"
seq 1 500 | sed 's/^/sensor reading /' >"$W/readings.txt"
printf '$ scl worker --capsule %.8s... --servers ... --broker %s --tee process --append readings.txt --once\n' \
	"$name2" "$BROKER"
SCL_HOME="$W/worker-home" "$SCL" worker --capsule "$name2" --servers "$SERVERS" \
	--broker "$BROKER" --platform-key "$W/platform.key" --tee process \
	--append "$W/readings.txt" --once >"$W/worker.out" 2>&1 ||
	{ cat "$W/worker.out"; echo "THE WORKER FAILED" >&2; exit 1; }
cat "$W/worker.out"
core_writer=$(sed -n 's/.*core writer key \([0-9a-f]*\).*/\1/p' "$W/worker.out")
echo "(the worker's data directory holds no capsule key: $(ls "$W/worker-home/keys" 2>/dev/null | wc -l) key files)"

step "13. The owner reads the core's records back from the servers, verified"
"$SCL" capsule read "$name2" --writer "$core_writer" | cmp - "$W/readings.txt"
echo "500 records by writer ${core_writer%"${core_writer#????????}"} read back identical; its certificate is its first record"
run "$SCL" capsule verify "$name2"

# --- The key-value store over a chaotic router ---------------------------------
step "14. A router that loses 30%, duplicates 10% and reorders 20% of messages"
ROUTER="tcp://127.0.0.1:$((PORT + 11))"
"$SCL" router --listen "$ROUTER" --chaos loss=0.3,dup=0.1,reorder=0.2,seed=42 \
	--ready-file "$W/router.ready" 2>"$W/router.log" &
pids="$pids $!"
wait_log "$W/router.ready" tcp
echo "router on $ROUTER (its --chaos is on purpose)"

step "15. Three attested workers share the capsule's KVS through it"
for i in 1 2 3; do
	SCL_HOME="$W/kv-home$i" "$SCL" worker --capsule "$name2" --servers "$SERVERS" --broker "$BROKER" \
		--platform-key "$W/platform.key" --tee process --router "$ROUTER" \
		--listen "tcp://127.0.0.1:$((PORT + 20 + i))" >"$W/kv$i.log" 2>&1 &
	pids="$pids $!"
done
for i in 1 2 3; do
	wait_log "$W/kv$i.log" "serving clients"
	echo "worker $i: $(grep -o 'core writer key [0-9a-f]\{16\}' "$W/kv$i.log")..., serving on tcp://127.0.0.1:$((PORT + 20 + i))"
done
kvw() { i=$1; shift; "$SCL" kv "$@" --worker "tcp://127.0.0.1:$((PORT + 20 + i))"; }
run "$SCL" kv put account/alice 100 --worker "tcp://127.0.0.1:$((PORT + 21))"
run "$SCL" kv put account/bob 250 --worker "tcp://127.0.0.1:$((PORT + 22))"
run "$SCL" kv put account/carol 75 --worker "tcp://127.0.0.1:$((PORT + 23))"
for i in 1 2 3; do
	j=1
	while [ $j -le 30 ]; do
		kvw "$i" put "counter/$((j % 5))" "worker$i-round$j" --no-wait >/dev/null
		j=$((j + 1))
	done
done
kvw 2 delete account/carol >/dev/null
echo "(and 90 more writes: three workers racing on the same five counters, then a delete)"

step "16. Every replica converges, whatever the router did"
digest() { kvw "$1" status | sed -n 's/.*"digest":"\([0-9a-f]*\)".*/\1/p'; }
t0=$(date +%s)
while :; do
	d1=$(digest 1) d2=$(digest 2) d3=$(digest 3)
	[ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d2" = "$d3" ] && break
	[ $(($(date +%s) - t0)) -ge 60 ] && break
	sleep 0.1
done
echo "(replicas agreed $(($(date +%s) - t0)) s after the last write was acknowledged)"
for i in 1 2 3; do
	echo "worker $i: state digest $(digest "$i" | cut -c1-16)..., $(kvw "$i" status | sed -n 's/.*"rejected":\([0-9]*\).*"fetches":\([0-9]*\).*/\1 messages rejected, \2 gaps fetched from the servers/p')"
done
if [ "$d1" != "$d2" ] || [ "$d2" != "$d3" ]; then
	echo "REPLICAS DIVERGED for 60 s; what each holds of the others:" >&2
	for i in 1 2 3; do
		echo "worker $i: $(kvw "$i" status | sed -n 's/.*"peers":\(\[.*\]\).*/\1/p')" >&2
	done
	exit 1
fi
printf '$ scl kv scan --worker <worker 3>\n'
kvw 3 scan
"$SCL" router status "$ROUTER" | sed 's/.*"chaos_lost":\([0-9]*\),"chaos_duplicated":\([0-9]*\),"chaos_reordered":\([0-9]*\).*/router: \1 messages lost, \2 duplicated, \3 reordered on purpose/'
run "$SCL" capsule verify "$name2"
for i in 1 2 3; do
	if grep -rqF "worker1-round" "$W/server$i"; then
		echo "PLAINTEXT ON SERVER $i" >&2
		exit 1
	fi
done
echo "(no key or value in plaintext on any server)"
echo
echo "demo: ok"

#!/bin/sh
# test_kv_net.sh - the KVS as real processes on a real (virtual) network.
#
# Every "host" is its own network namespace, joined to a bridge in a
# switch namespace by a veth pair: 3 capsule servers, 2 chained routers
# (the leaf's --upstream is the top), the owner's key broker, and 3
# workers (two on the leaf router, one on the top), each router losing
# 30%, duplicating 10% and reordering 20% of what it forwards (--chaos;
# this kernel has no tc netem).  Then:
#
#  1. all three workers write: unique keys with durable puts (each
#     acknowledged one must survive) and contested keys (LWW decides);
#  2. worker 3's link goes down for 3 s while everyone keeps writing
#     (a partition), and comes back;
#  3. an attacker on the router replays and alters what it captured;
#  4. every replica must end with the same digest, holding every
#     acknowledged put, with forgeries counted as rejected, the capsule
#     verifying on every server and no plaintext on their disks;
#  5. a fourth worker started afterwards rebuilds the same state from
#     the capsule alone;
#  6. SIGTERM right after 20 puts nobody waited for: the worker makes
#     them durable before it exits, and a fifth worker finds them all;
#     the seal clock seals a lone put long before a 10 s batch delay;
#     with a 10 s store delay a lone put is not on the servers after
#     1.5 s, and a durable put takes it there;
#  4b. refusals keep their reason and code from the core to scl kv (a
#     value over 1 MiB, a key over 1 KiB), and every malformed request
#     frame gets an error reply with its id;
#  7. with two servers killed, a new worker catches up from the third
#     and says it had no read quorum; with every server killed, a worker
#     still exits within 10 s of SIGTERM and says what the servers do
#     not hold.
#
# Where namespaces cannot be made, the same scenario runs on loopback
# (the partition is then a SIGSTOP of worker 3), and says so.
#
# Usage: test_kv_net.sh SCL KVFORGE KVRAW
set -u
SCL=$(readlink -f "$1")
FORGE=$(readlink -f "$2")
KVRAW=$(readlink -f "$3")
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-kvnet-XXXXXX")
P=sclt$$		# namespace prefix, unique per run
fails=0
checks=0
pids=""
NETNS=1

ok() { checks=$((checks + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }
cleanup() {
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$NETNS" = 1 ]; then
		for ns in sw s1 s2 s3 r1 r2 own w1 w2 w3 w4; do
			ip netns del "$P$ns" 2>/dev/null
		done
	fi
	[ "$fails" = 0 ] && rm -rf "$T" || echo "kept $T for inspection" >&2
}
trap cleanup EXIT

# --- the network -------------------------------------------------------------
HOSTS="s1 s2 s3 r1 r2 own w1 w2 w3 w4"
ipof() { # host -> address
	case $1 in
	s1) echo 10.77.0.11 ;; s2) echo 10.77.0.12 ;; s3) echo 10.77.0.13 ;;
	r1) echo 10.77.0.21 ;; r2) echo 10.77.0.22 ;; own) echo 10.77.0.30 ;;
	w1) echo 10.77.0.41 ;; w2) echo 10.77.0.42 ;; w3) echo 10.77.0.43 ;;
	w4) echo 10.77.0.44 ;;
	esac
}
make_net() {
	ip netns add "${P}sw" 2>/dev/null || return 1
	ip -n "${P}sw" link add br0 type bridge || return 1
	ip -n "${P}sw" link set br0 up || return 1
	for h in $HOSTS; do
		ip netns add "$P$h" || return 1
		ip link add "${P}$h" type veth peer name "${P}${h}b" || return 1
		ip link set "${P}$h" netns "$P$h" || return 1
		ip link set "${P}${h}b" netns "${P}sw" || return 1
		ip -n "${P}sw" link set "${P}${h}b" master br0 up || return 1
		ip -n "$P$h" addr add "$(ipof "$h")/24" dev "${P}$h" || return 1
		ip -n "$P$h" link set "${P}$h" up || return 1
		ip -n "$P$h" link set lo up || return 1
	done
}
# SCL_TEST_NO_NETNS=1 forces the loopback variant (to test the test).
if [ -n "${SCL_TEST_NO_NETNS:-}" ] || [ "$(id -u)" != 0 ] ||
	! command -v ip >/dev/null || ! make_net; then
	NETNS=0
	for ns in sw $HOSTS; do ip netns del "$P$ns" 2>/dev/null; done
	echo "test_kv_net: NOTE: network namespaces are not available here" \
	     "(need root and iproute2); running the same scenario on" \
	     "loopback, with SIGSTOP standing in for the partition" >&2
fi
# on HOST run CMD...
on() {
	h=$1
	shift
	if [ "$NETNS" = 1 ]; then ip netns exec "$P$h" "$@"; else "$@"; fi
}
# bg HOST CMD...: in the background; $! and the pid list name the
# process itself (not a subshell), so cleanup's kill -9 reaches it.
bg() {
	h=$1
	shift
	if [ "$NETNS" = 1 ]; then ip netns exec "$P$h" "$@" & else "$@" & fi
	pids="$pids $!"
}
PORT=$(( 28000 + ($$ % 200) * 20 ))	# below the ephemeral ports; apart from other tests
addr() { # host port-offset
	if [ "$NETNS" = 1 ]; then echo "tcp://$(ipof "$1"):$((7400 + $2))"
	else echo "tcp://127.0.0.1:$((PORT + $2))"; fi
}
S1=$(addr s1 1) S2=$(addr s2 2) S3=$(addr s3 3)
R1=$(addr r1 4) R2=$(addr r2 5) BROKER=$(addr own 6)
W1=$(addr w1 7) W2=$(addr w2 8) W3=$(addr w3 9) W4=$(addr w4 10)
SERVERS="$S1,$S2,$S3"
CHAOS="loss=0.3,dup=0.1,reorder=0.2"

wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
wait_log() { for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

# --- the services ---------------------------------------------------------------
export SCL_HOME="$T/owner"
for i in 1 2 3; do
	eval "me=\$S$i"
	peers=$(for j in 1 2 3; do [ "$j" != "$i" ] && eval "printf '%s,' \$S$j"; done)
	bg "s$i" "$SCL" server --listen "$me" --data "$T/s$i" --peers "${peers%,}" \
		--ready-file "$T/ready-s$i" 2>>"$T/s$i.log"
	eval "spid$i=$!"
done
bg r1 "$SCL" router --listen "$R1" --chaos "$CHAOS,seed=1" \
	--ready-file "$T/ready-r1" 2>>"$T/r1.log"
bg r2 "$SCL" router --listen "$R2" --upstream "$R1" --chaos "$CHAOS,seed=2" \
	--ready-file "$T/ready-r2" 2>>"$T/r2.log"
for f in s1 s2 s3 r1 r2; do wait_file "$T/ready-$f" || bad "$f did not start"; done

"$SCL" keys gen --out "$T/owner.key" >/dev/null
"$SCL" keys gen --out "$T/platform.key" >/dev/null
name=$(on own "$SCL" capsule create --servers "$SERVERS" --owner-key "$T/owner.key" \
	--label kv-net 2>/dev/null | tail -n 1)
printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok || bad "create: $name"
bg own "$SCL" keys serve "$name" --listen "$BROKER" --allow "$("$SCL" keys measure)" \
	--trust-platform "$("$SCL" keys show "$T/platform.key")" >"$T/broker.log" 2>&1
wait_log "$T/broker.log" serving || bad "broker did not start"

host_of() { eval "echo \${HOST$1:-w$1}"; }	# worker n's host
start_worker() { # n router listen [worker options...]
	n=$1 r=$2 l=$3
	shift 3
	rm -f "$T/w$n.log"
	SCL_HOME="$T/home-w$n" bg "$(host_of "$n")" "$SCL" worker --capsule "$name" \
		--broker "$BROKER" --platform-key "$T/platform.key" \
		--servers "$SERVERS" --router "$r" --listen "$l" "$@" >"$T/w$n.log" 2>&1
	eval "wpid$n=$!"
}
start_worker 1 "$R2" "$W1"
start_worker 2 "$R2" "$W2"
# Worker 3 writes records v1 (BLAKE2b), as for servers of an older
# build; the others v3 (SHA-256, salted keys): one capsule holds both.
start_worker 3 "$R1" "$W3" --record-version 1
for w in 1 2 3; do
	wait_log "$T/w$w.log" "serving clients" || bad "worker $w: $(tail -n 3 "$T/w$w.log")"
done

kv() { # worker-n args...
	w=$1
	shift
	eval "ep=\$W$w"
	on "$(host_of "$w")" "$SCL" kv "$@" --worker "$ep" --timeout-ms 20000
}

# --- 1 and 2: writes everywhere, a partition in the middle ------------------
writer() { # worker-n rounds
	w=$1
	i=0
	while [ "$i" -lt "$2" ]; do
		i=$((i + 1))
		if [ "$w" != 3 ] || [ ! -e "$T/partitioned" ]; then
			# durable: acknowledged only once W servers hold it
			if kv "$w" put "ack/$w/$i" "v$w-$i" >/dev/null 2>&1; then
				echo "ack/$w/$i v$w-$i" >>"$T/acked-$w"
			fi
		fi
		kv "$w" put "hot/$((i % 7))" "w$w-r$i" --no-wait >/dev/null 2>&1 ||
			echo "hot put failed on $w" >>"$T/errors"
		[ $((i % 5)) = 0 ] && kv "$w" delete "hot/$((i % 3))" --no-wait \
			>/dev/null 2>&1
	done
}
: >"$T/acked-1"; : >"$T/acked-2"; : >"$T/acked-3"
( on r2 "$FORGE" "$R2" "$name" 2500 >"$T/forge.out" 2>&1 ) &
forger=$!
writer 1 40 & a=$!
writer 2 40 & b=$!
writer 3 40 & c=$!
sleep 1.5
touch "$T/partitioned"
if [ "$NETNS" = 1 ]; then
	ip -n "${P}sw" link set "${P}w3b" down
else
	kill -STOP "$wpid3"
fi
echo "partition: worker 3 cut off for 3 s"
sleep 3
if [ "$NETNS" = 1 ]; then
	ip -n "${P}sw" link set "${P}w3b" up
else
	kill -CONT "$wpid3"
fi
rm -f "$T/partitioned"
wait "$a" "$b" "$c"
wait "$forger"
[ -s "$T/errors" ] && bad "writes failed: $(sort "$T/errors" | uniq -c)"
grep -q "captured [1-9]" "$T/forge.out" && ok ||
	bad "the attacker saw no traffic: $(cat "$T/forge.out")"

# --- 4. convergence -------------------------------------------------------------
digest() { kv "$1" status 2>/dev/null | sed -n 's/.*"digest":"\([0-9a-f]*\)".*/\1/p'; }
t0=$(date +%s%3N)
converged=0
for _ in $(seq 300); do
	d1=$(digest 1) d2=$(digest 2) d3=$(digest 3)
	if [ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d2" = "$d3" ]; then
		converged=1
		break
	fi
	sleep 0.1
done
t1=$(date +%s%3N)
[ "$converged" = 1 ] && ok || bad "replicas did not converge: $d1 $d2 $d3"
echo "converged $((t1 - t0)) ms after the last write (digest ${d1%"${d1#????????????????}"})"
for w in 1 2 3; do
	kv "$w" scan >"$T/scan-$w" 2>/dev/null
done
cmp -s "$T/scan-1" "$T/scan-2" && cmp -s "$T/scan-1" "$T/scan-3" && ok ||
	bad "scans differ"
lost=0
acked=0
for w in 1 2 3; do
	while read -r k v; do
		acked=$((acked + 1))
		for r in 1 2 3; do
			grep -qx "$(printf '%s\t%s' "$k" "$v")" "$T/scan-$r" ||
				{ lost=$((lost + 1)); echo "lost on $r: $k" >&2; }
		done
	done <"$T/acked-$w"
done
[ "$acked" -gt 60 ] && ok || bad "only $acked durable puts were acknowledged"
[ "$lost" = 0 ] && ok || bad "$lost acknowledged puts missing"
echo "$acked durable puts acknowledged, $lost missing anywhere"
rejected=0
for w in 1 2 3; do
	r=$(kv "$w" status | sed -n 's/.*"rejected":\([0-9]*\).*/\1/p')
	rejected=$((rejected + ${r:-0}))
done
[ "$rejected" -gt 0 ] && ok || bad "no forgery was counted as rejected"
echo "forged or garbage messages rejected and counted: $rejected ($(cat "$T/forge.out"))"
for r in r1 r2; do
	eval "ra=\$$(echo "$r" | tr a-z A-Z)"
	on "$r" "$SCL" router status "$ra" | grep -q '"chaos_lost":[1-9]' && ok ||
		bad "router $r injected no loss"
done

on own "$SCL" capsule verify "$name" --servers "$SERVERS" >"$T/verify.out" 2>&1 &&
	grep -q "3 of 3 servers" "$T/verify.out" && ok ||
	bad "capsule verify: $(tail -n 3 "$T/verify.out")"
# Both record versions are on the servers (a consistent copy of server
# 1's store, taken while it runs).
mkdir -p "$T/s1-copy/store" && mdb_copy "$T/s1/store" "$T/s1-copy/store" &&
	"$SCL" capsule inspect "$name" --dir "$T/s1-copy" >"$T/inspect.out" 2>&1 &&
	grep -q ' data   v1 ' "$T/inspect.out" && grep -q ' data   v3 ' "$T/inspect.out" &&
	ok || bad "server 1 does not hold records v1 and v3: $(tail -n 3 "$T/inspect.out")"
rm -rf "$T/s1-copy"
for i in 1 2 3; do
	if grep -rqF "hot/" "$T/s$i" || grep -rqF "v1-1" "$T/s$i"; then
		bad "plaintext on server $i"
	else
		ok
	fi
done

# --- 4b. refusals: the core's reason and code reach the client ------------------
head -c 1048577 /dev/zero >"$T/big"
expect_fail() { # needle command...: exits 1, and stderr says needle
	needle=$1
	shift
	if "$@" >"$T/out" 2>"$T/err"; then
		bad "'$*' succeeded"
	elif ! grep -qF -- "$needle" "$T/err"; then
		bad "'$*' did not say '$needle': $(cat "$T/err")"
	else
		ok
	fi
}
expect_fail "value length 1048577 exceeds the limit of 1048576 [ELIMIT]" \
	kv 1 put big --value-file "$T/big"
expect_fail "key length 1025 exceeds the limit of 1024 [ELIMIT]" \
	kv 1 put "$(head -c 1025 /dev/zero | tr '\0' k)" v
expect_fail "no key 'big'" kv 1 get big
on "$(host_of 1)" "$SCL" kv put dash --worker "$W1" --no-wait -- -1 \
	>/dev/null 2>&1 &&
	[ "$(kv 1 get dash 2>/dev/null)" = "-1" ] && ok ||
	bad "a value that starts with '-' after '--' was not stored"
# Every malformed frame is answered, with the id it carried.
raw() { on "$(host_of 1)" "$KVRAW" "$W1" "$1" 2>&1; }
for c in ":status EFORMAT id 0" \
	"01:status EFORMAT id 0" \
	"010107000000000000000000000000:status EVERSION id 7" \
	"090208000000000000000000000000:unknown kind 9" \
	"010209000000000000008000000000:unknown flags 0x80" \
	"01020a0000000000000000010000007a:unknown operation 0x7a"; do
	got=$(raw "${c%%:*}")
	case "$got" in
	*"${c#*:}"*) ok ;;
	*) bad "frame '${c%%:*}' got '$got', not '${c#*:}'" ;;
	esac
done
# The put of 'dash' is the state the late worker must rebuild.
for _ in $(seq 100); do
	d1=$(digest 1) d2=$(digest 2) d3=$(digest 3)
	[ -n "$d1" ] && [ "$d1" = "$d2" ] && [ "$d2" = "$d3" ] && break
	sleep 0.1
done

# --- 5. a late worker rebuilds from the capsule -------------------------------
start_worker 4 "$R1" "$W4"
wait_log "$T/w4.log" "caught up" || bad "worker 4 did not catch up: $(tail -n 3 "$T/w4.log")"
d4=""
for _ in $(seq 100); do
	d4=$(digest 4)
	[ "$d4" = "$d1" ] && break
	sleep 0.1
done
[ "$d4" = "$d1" ] && ok || bad "late worker's digest $d4, expected $d1"

running() { st=$(ps -o stat= -p "$1" 2>/dev/null); [ -n "$st" ] && [ "${st#Z}" = "$st" ]; }
# stop_worker N WHAT: SIGTERM, then at most 10 s to exit.
stop_worker() {
	eval "p=\$wpid$1"
	kill -TERM "$p"
	t0=$(date +%s%3N)
	for _ in $(seq 100); do running "$p" || break; sleep 0.1; done
	if running "$p"; then
		bad "worker $1 still running 10 s after SIGTERM $2"
	else
		ok
		echo "worker $1 stopped $(($(date +%s%3N) - t0)) ms after SIGTERM $2"
	fi
}

# --- 6. a stopping worker first makes what it was told durable ----------------
for i in $(seq 20); do
	kv 4 put "last/$i" "before-stop-$i" --no-wait >/dev/null 2>&1 ||
		bad "put last/$i failed"
done
stop_worker 4 "right after 20 puts it did not wait for"
grep -q "the servers hold every operation" "$T/w4.log" && ok ||
	bad "worker 4 stopped without its writes durable: $(tail -n 2 "$T/w4.log")"
HOST5=w4 W5=$(addr w4 11)	# a new worker in worker 4's place
# A batch delay of 10 s: batches close only because the seal clock
# closes them (the worker is not saturated), or because a durable put
# asks.
start_worker 5 "$R1" "$W5" --batch-delay-us 10000000
wait_log "$T/w5.log" "caught up" || bad "worker 5 did not catch up: $(tail -n 3 "$T/w5.log")"
n5=$(kv 5 scan --prefix last/ 2>/dev/null | grep -c "before-stop")
[ "$n5" = 20 ] && ok || bad "a new worker found $n5 of the 20 last puts on the servers"
on w4 "$SCL" kv put clock/1 unwaited --no-wait --worker "$W5" >/dev/null 2>&1
durable5=""
for _ in $(seq 50); do
	durable5=$(kv 5 status | sed -n 's/.*"durable":\([0-9]*\).*/\1/p')
	[ "${durable5:-0}" -ge 1 ] && break
	sleep 0.1
done
[ "${durable5:-0}" -ge 1 ] && ok ||
	bad "an unwaited put was not sealed and stored within 5 s with a 10 s batch delay"
# The host's rings say how its waits for the core ended: by a spin or a
# sleep; a worker that has caught up and served requests has waited.
status5=$(kv 5 status)
spun5=$(printf '%s' "$status5" | sed -n 's/.*"answer_waits_spun":\([0-9]*\).*/\1/p')
slept5=$(printf '%s' "$status5" | sed -n 's/.*"answer_waits_slept":\([0-9]*\).*/\1/p')
[ -n "$spun5" ] && [ -n "$slept5" ] && [ $((spun5 + slept5)) -gt 0 ] && ok ||
	bad "worker 5's status has no ring waits (spun ${spun5:-?}, slept ${slept5:-?})"
# A store delay of 10 s: sealed batches wait for the servers (the peers
# have them at once), until a put that asks for durability takes them
# along.  (Whether a peer sees them is not checked here: through a router
# losing 30%, a lost batch is recovered from the servers.)
HOST6=w4 W6=$(addr w4 12)
start_worker 6 "$R1" "$W6" --store-delay-us 10000000 --no-catch-up
wait_log "$T/w6.log" "serving clients" || bad "worker 6: $(tail -n 3 "$T/w6.log")"
on w4 "$SCL" kv put clock/2 unwaited --no-wait --worker "$W6" >/dev/null 2>&1
sleep 1.5
durable6=$(kv 6 status | sed -n 's/.*"durable":\([0-9]*\).*/\1/p')
[ "${durable6:-x}" = 0 ] && ok ||
	bad "with a 10 s store delay a lone put was stored at once (durable: ${durable6:-no status})"
unstored6=$(kv 6 status | sed -n 's/.*"unstored_bytes":\([0-9]*\).*/\1/p')
[ "${unstored6:-0}" -gt 0 ] && ok ||
	bad "worker 6's status shows no bytes waiting for the servers (${unstored6:-no status})"
t0=$(date +%s%3N)
kv 6 put clock/3 waited >/dev/null 2>&1 && ok || bad "a durable put on worker 6 failed"
dt=$(($(date +%s%3N) - t0))
[ "$dt" -lt 3000 ] && ok ||
	bad "a durable put waited out the 10 s store delay ($dt ms)"
durable6=$(kv 6 status | sed -n 's/.*"durable":\([0-9]*\).*/\1/p')
[ "${durable6:-0}" -ge 2 ] && ok ||
	bad "a durable put did not take the unwaited one with it (durable: ${durable6:-no status})"
unstored6=$(kv 6 status | sed -n 's/.*"unstored_bytes":\([0-9]*\).*/\1/p')
[ "${unstored6:-x}" = 0 ] && ok ||
	bad "worker 6 still shows ${unstored6:-no status} bytes waiting after a durable put"
# Three batches waited (the certificate, clock/2 and clock/3): they went
# together, in fewer appends than batches.
appends6=$(kv 6 status | sed -n 's/.*"appends":\([0-9]*\).*/\1/p')
[ "${appends6:-0}" -ge 1 ] && [ "${appends6:-9}" -lt 3 ] && ok ||
	bad "three waiting batches took ${appends6:-no status} appends, not one or two"
stop_worker 6 "after the clock checks"

# --- 7. with most servers gone: catch-up says so; stopping is prompt ------------
# A worker starting with one server of three catches up from it after
# waiting once for a read quorum, and warns that writes only the others
# hold arrive later.
kill -9 "$spid2" "$spid3"
HOST7=w4 W7=$(addr w4 13)
start_worker 7 "$R1" "$W7"
wait_log "$T/w7.log" "caught up" || bad "worker 7 did not catch up from one server: $(tail -n 3 "$T/w7.log")"
grep -q "catching up from fewer servers than a read quorum (2 of 3)" "$T/w7.log" && ok ||
	bad "worker 7 did not say it caught up without a read quorum: $(tail -n 3 "$T/w7.log")"
n7=$(kv 7 scan --prefix last/ 2>/dev/null | grep -c "before-stop")
[ "$n7" = 20 ] && ok || bad "worker 7 found $n7 of the 20 last puts on the one server left"
stop_worker 7 "after catching up from one server"
# Worker 8 (section 8) reads the capsule's metadata from the last server.
HOST8=w4 W8=$(addr w4 14)
start_worker 8 "$R1" "$W8" --no-catch-up --unstored-max-mb 1 --store-delay-us 0
wait_log "$T/w8.log" "serving clients" || bad "worker 8: $(tail -n 3 "$T/w8.log")"
kill -9 "$spid1"
kv 5 put orphan/1 never-durable --no-wait >/dev/null 2>&1 || bad "a put without servers failed"
sleep 1	# appends and fetches to servers that will not answer are pending
stop_worker 5 "with its servers gone"
grep -q "stopping with 1 operation the servers do not hold" "$T/w5.log" && ok ||
	bad "worker 5 did not say what it could not store: $(tail -n 2 "$T/w5.log")"

# --- 8. servers gone for good: what waits for them is bounded ------------------
# With --unstored-max-mb 1 and no server to take its appends, a worker
# takes puts until 1 MiB (and the few frames on their way to its
# appender) waits, then refuses writes with an error that says why,
# while reads and status go on; a stop is still prompt.
big=$(head -c 98304 /dev/zero | tr '\0' x)	# 96 KiB: 11 fill 1 MiB
# 11 reach 1 MiB; a put that arrives while the core's open batch still
# holds the previous one's may add one more.  Without the bound it takes
# them all.
taken=0
while [ "$taken" -lt 100 ] && on w4 "$SCL" kv put "big/$taken" "$big" --no-wait \
	--worker "$W8" --timeout-ms 6000 >/dev/null 2>"$T/put8.err"; do
	taken=$((taken + 1))
done
echo "worker 8 took $taken puts of 96 KiB, then: $(cat "$T/put8.err")"
[ "$taken" -ge 11 ] && [ "$taken" -le 13 ] && ok ||
	bad "worker 8 took $taken puts of 96 KiB with 1 MiB for what the servers do not hold"
grep -q "writes are refused until they do" "$T/put8.err" && ok ||
	bad "worker 8's refusal did not say why: $(cat "$T/put8.err")"
got8=$(kv 8 get big/0 2>&1 | head -c 96)
[ "$got8" = "$(printf '%s' "$big" | head -c 96)" ] && ok ||
	bad "worker 8 did not answer a read while refusing writes: $got8"
status8=$(kv 8 status 2>&1)
refused8=$(printf '%s' "$status8" | sed -n 's/.*"refused_writes":\([0-9]*\).*/\1/p')
unstored8=$(printf '%s' "$status8" | sed -n 's/.*"unstored_bytes":\([0-9]*\).*/\1/p')
[ "${refused8:-0}" -ge 1 ] && [ "${unstored8:-0}" -ge 1048576 ] && ok ||
	bad "worker 8's status while refusing: refused ${refused8:-?}, unstored ${unstored8:-?} bytes"
wait_log "$T/w8.log" "the servers do not hold the last 1 MiB of writes yet" && ok ||
	bad "worker 8 did not log that its writes wait for the servers: $(tail -n 2 "$T/w8.log")"
stop_worker 8 "while refusing writes"

echo "test_kv_net ($([ "$NETNS" = 1 ] && echo namespaces || echo loopback)): $checks checks, $fails failed"
[ "$fails" = 0 ]

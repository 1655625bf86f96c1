#!/bin/sh
# test_worker.sh - the worker as real processes: a capsule server, the
# owner's key broker (scl keys serve) and scl worker with its core in the
# process backend, each in its own data directory.
#
#  1. A worker whose code is not on the broker's allow list, or whose
#     platform key the broker does not trust, gets nothing.
#  2. An attested worker seals lines in its core; they read back from the
#     server, verified, as a certified writer's records, and the worker's
#     home holds no capsule key.
#  3. An idle worker (host and core) uses < 1% CPU.
#  4. The owner revokes the running worker: its next records are refused
#     by the server and the worker exits non-zero, saying so.
#
#  5. Key rotation: a worker attested later seals under the new epoch.
#  6. A core whose host is killed with SIGKILL dies with it.
#
# Usage: test_worker.sh SCL
set -u
SCL=$1
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-worker-XXXXXX")
OWNER="$T/owner"
WORKER="$T/worker"
BASE=$(( 24000 + ($$ % 200) * 20 ))	# below the ephemeral ports; apart from other tests
SERVER="tcp://127.0.0.1:$BASE"
BROKER="tcp://127.0.0.1:$((BASE + 1))"
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
expect() {
	want=$1 needle=$2
	shift 2
	out=$("$@" 2>&1)
	got=$?
	if [ "$got" != "$want" ]; then
		bad "'$*' exited $got, expected $want: $out"
	elif [ -n "$needle" ] && ! printf '%s' "$out" | grep -qF -- "$needle"; then
		bad "'$*' output lacks '$needle': $out"
	else
		ok
	fi
}
wait_for() { # FILE NEEDLE: up to 10 s
	for _ in $(seq 200); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# CPU ticks (user + system) of a process and its children still running.
ticks() {
	total=0
	for p in "$@"; do
		[ -n "$p" ] || continue
		t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
		total=$((total + t))
	done
	echo "$total"
}

"$SCL" server --listen "$SERVER" --data "$T/server" --ready-file "$T/ready" \
	2>>"$T/server.log" &
pids="$pids $!"
for _ in $(seq 100); do [ -s "$T/ready" ] && break; sleep 0.05; done
[ -s "$T/ready" ] && ok || bad "server did not start"

export SCL_HOME="$OWNER"
"$SCL" keys gen --out "$T/owner.key" >/dev/null
"$SCL" keys gen --out "$T/platform.key" >/dev/null
"$SCL" keys gen --out "$T/rogue.key" >/dev/null
name=$("$SCL" capsule create --servers "$SERVER" --replicas 1 \
	--owner-key "$T/owner.key" --label worker-test 2>/dev/null | tail -n 1)
printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok || bad "create: $name"
meas=$("$SCL" keys measure)
plat=$("$SCL" keys show "$T/platform.key")

start_broker() { # ALLOW
	SCL_HOME="$OWNER" "$SCL" keys serve "$name" --listen "$BROKER" --allow "$1" \
		--trust-platform "$plat" >>"$T/broker.log" 2>&1 &
	broker=$!
	pids="$pids $broker"
	wait_for "$T/broker.log" "serving" || bad "broker did not start"
}
stop_broker() { kill "$broker"; wait "$broker" 2>/dev/null; }

# --- 1. wrong code, untrusted platform ------------------------------------
export SCL_HOME="$WORKER"
start_broker "$(printf '%064d' 7)"
expect 1 "not on the allow list" "$SCL" worker --capsule "$name" \
	--broker "$BROKER" --servers "$SERVER" --platform-key "$T/platform.key" --once
stop_broker
start_broker "$meas"
expect 1 "not trusted" "$SCL" worker --capsule "$name" --broker "$BROKER" \
	--servers "$SERVER" --platform-key "$T/rogue.key" --once
expect 2 "--capsule NAME and --broker ENDPOINT are required" "$SCL" worker
expect 0 "Usage: scl worker" "$SCL" worker --help
expect 2 "unknown TEE backend 'sgx'" "$SCL" worker --capsule "$name" --broker "$BROKER" --tee sgx

# --- 2. an attested worker seals lines in its core --------------------------
seq 1 200 | sed 's/^/canary-line-/' >"$T/lines.txt"
"$SCL" worker --capsule "$name" --broker "$BROKER" --servers "$SERVER" \
	--platform-key "$T/platform.key" --tee process --append "$T/lines.txt" \
	--once >"$T/w1.out" 2>&1 && ok || bad "worker --append: $(cat "$T/w1.out")"
grep -qF "sealed 200 records in the core" "$T/w1.out" && ok ||
	bad "worker --append: $(cat "$T/w1.out")"
w1=$(sed -n 's/.*core writer key \([0-9a-f]*\).*/\1/p' "$T/w1.out")
out=$("$SCL" worker --capsule "$name" --broker "$BROKER" --servers "$SERVER" \
	--platform-key "$T/platform.key" --once 2>&1)
printf '%s' "$out" | grep -qF "WARNING: simulated attestation" && ok ||
	bad "the sim backend did not warn: $out"
ls "$WORKER/keys" 2>/dev/null | grep -q keyring &&
	bad "the worker's home holds a keyring" || ok
export SCL_HOME="$OWNER"
"$SCL" capsule read "$name" --servers "$SERVER" --writer "$w1" >"$T/read.txt" \
	2>"$T/read.err"
cmp -s "$T/read.txt" "$T/lines.txt" && ok ||
	bad "read back differs: $(head -c 300 "$T/read.err")"
expect 0 "ok:" "$SCL" capsule verify "$name" --servers "$SERVER"
grep -rqF "canary-line" "$T/server" && bad "plaintext on the server" || ok

# --- 3. an idle worker uses < 1% CPU -----------------------------------------
export SCL_HOME="$WORKER"
mkfifo "$T/feed"
"$SCL" worker --capsule "$name" --broker "$BROKER" --servers "$SERVER" \
	--platform-key "$T/platform.key" --tee process --append "$T/feed" \
	>"$T/worker.out" 2>&1 &
wpid=$!
pids="$pids $wpid"
exec 3<>"$T/feed" # read-write: never blocks, even if the worker died
wait_for "$T/worker.out" "attested" || bad "worker not attested: $(cat "$T/worker.out")"
core=$(sed -n 's/.*process backend (pid \([0-9]*\).*/\1/p' "$T/worker.out")
[ -n "$core" ] && [ -d "/proc/$core" ] && ok || bad "no core pid: $(cat "$T/worker.out")"
sleep 1
t0=$(ticks "$wpid" "$core")
sleep 5
t1=$(ticks "$wpid" "$core")
hz=$(getconf CLK_TCK)
# < 1% of one CPU over 5 s
[ $(( (t1 - t0) * 100 )) -lt $(( 5 * hz )) ] && ok ||
	bad "idle worker used $((t1 - t0)) ticks of $hz/s in 5 s"
echo "idle worker: $((t1 - t0)) CPU ticks ($hz per second) in 5 s"

# --- 4. revocation ------------------------------------------------------------
seq 1 64 | sed 's/^/first-/' >&3
writer=$(sed -n 's/.*core writer key \([0-9a-f]*\).*/\1/p' "$T/worker.out")
for _ in $(seq 100); do
	n=$(SCL_HOME="$OWNER" "$SCL" capsule read "$name" --servers "$SERVER" \
		--writer "$writer" 2>/dev/null | grep -c '^first-')
	[ "$n" = 64 ] && break
	sleep 0.1
done
[ "$n" = 64 ] && ok || bad "the running worker's first 64 lines: $n stored"
export SCL_HOME="$OWNER"
# cert + 64 records: seqnos 1..65 stay valid
expect 0 "revoked writer" "$SCL" keys revoke "$name" --writer "$writer" \
	--max-seqno 65 --servers "$SERVER"
seq 1 64 | sed 's/^/second-/' >&3
exec 3>&-
rc=0
wait "$wpid" || rc=$?
[ "$rc" = 1 ] && ok || bad "revoked worker exited $rc"
grep -qF "revoked writer" "$T/worker.out" && ok ||
	bad "revoked worker did not say why: $(tail -n 3 "$T/worker.out")"
"$SCL" capsule read "$name" --servers "$SERVER" --writer "$writer" |
	grep -c '^second-' >"$T/n2"
[ "$(cat "$T/n2")" = 0 ] && ok || bad "records after revocation were stored"
expect 0 "ok:" "$SCL" capsule verify "$name" --servers "$SERVER"
# ... and the broker refuses it a key ever after (a fresh nonce, same key
# is impossible for a new worker, so check the broker's list instead).
grep -qF "$writer" "$OWNER/keys/$name.revoked" 2>/dev/null && ok ||
	bad "the broker's revocation list lacks the writer"

# --- 5. key rotation: a worker attested later seals under the new epoch ---
expect 0 "new data key epoch 2" "$SCL" keys rotate "$name"
export SCL_HOME="$WORKER"
seq 1 10 | sed 's/^/epoch2-/' >"$T/e2.txt"
"$SCL" worker --capsule "$name" --broker "$BROKER" --servers "$SERVER" \
	--platform-key "$T/platform.key" --append "$T/e2.txt" --once \
	>"$T/w3.out" 2>&1 && ok || bad "worker after rotation: $(cat "$T/w3.out")"
w3=$(sed -n 's/.*core writer key \([0-9a-f]*\).*/\1/p' "$T/w3.out")
export SCL_HOME="$OWNER"
"$SCL" capsule read "$name" --servers "$SERVER" --writer "$w3" >"$T/e2.read" \
	2>&1
cmp -s "$T/e2.read" "$T/e2.txt" && ok || bad "epoch 2 read: $(head -3 "$T/e2.read")"

# --- 5b. readers enforce a revocation that cuts into stored records -----------
# Writer 1 stored a certificate and 200 lines (seqnos 1..201), then the
# owner revokes it after record 3: records 4..201 are on the server, and
# every reader must treat them as invalid.
export SCL_HOME="$OWNER"
expect 0 "revoked writer" "$SCL" keys revoke "$name" --writer "$w1" \
	--max-seqno 3 --servers "$SERVER"
short1=$(printf '%s' "$w1" | cut -c1-16)
expect 1 "REVOKED: writer $short1... has records 4..201 on the servers past its revocation after record 3" \
	"$SCL" capsule verify "$name" --servers "$SERVER"
"$SCL" capsule read "$name" --servers "$SERVER" --writer "$w1" \
	>"$T/rev.out" 2>"$T/rev.err" && ok || bad "read of a revoked writer: $(cat "$T/rev.err")"
[ "$(cat "$T/rev.out")" = "$(sed -n 1,2p "$T/lines.txt")" ] && ok ||
	bad "a read of the revoked writer printed $(wc -l <"$T/rev.out") lines, not records 2..3"
grep -q "revoked writer $short1... after its record 3 .*records 4..201 are not valid and not printed" \
	"$T/rev.err" && ok || bad "the read did not warn: $(cat "$T/rev.err")"
expect 1 "REVOKED" "$SCL" capsule read "$name" --servers "$SERVER" \
	--writer "$w1" --from 2 --to 10
expect 1 "records 4..201 are not valid" "$SCL" capsule read "$name" \
	--servers "$SERVER" --writer "$w1" --from 50
# A proof checks against the name alone, which cannot know of the owner's
# later revocation: it says so rather than imply the record is valid.
"$SCL" capsule prove "$name" 10 --servers "$SERVER" --writer "$w1" >"$T/r10.proof" &&
	SCL_HOME="$T/stranger" "$SCL" capsule check-proof "$name" <"$T/r10.proof" \
		>"$T/r10.check" 2>&1 &&
	grep -q "revocation   not checked" "$T/r10.check" && ok ||
	bad "check-proof of a revoked writer's record: $(cat "$T/r10.check")"

# --- 6. a core does not outlive its host ---------------------------------------
export SCL_HOME="$WORKER"
"$SCL" worker --capsule "$name" --broker "$BROKER" --servers "$SERVER" \
	--platform-key "$T/platform.key" --tee process >"$T/w6.out" 2>&1 &
w6=$!
pids="$pids $w6"
wait_for "$T/w6.out" "ready" || bad "worker 6: $(cat "$T/w6.out")"
core6=$(sed -n 's/.*process backend (pid \([0-9]*\).*/\1/p' "$T/w6.out")
kill -9 "$w6"
gone=0
for _ in $(seq 40); do
	[ -d "/proc/$core6" ] && ! grep -q '^State:.*Z' "/proc/$core6/status" 2>/dev/null ||
		{ gone=1; break; }
	sleep 0.05
done
[ "$gone" = 1 ] && ok || bad "the core ($core6) outlived its SIGKILLed host"

echo "test_worker: $checks checks, $fails failed"
[ "$fails" = 0 ]

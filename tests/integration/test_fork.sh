#!/bin/sh
# test_fork.sh - a writer that signs two different records at one seqno
# (a fork: the owner's home restored from a backup, or a certified
# writer's) and sends one to each of two peered servers, each of which
# acknowledges its own.  Real processes on loopback.  For the owner and
# for a certified writer:
#
#  1. anti-entropy finds the fork by the heads' hashes and both servers
#     keep evidence;
#  2. `scl capsule verify` fails, naming the writer and the seqno;
#  3. `scl capsule evidence` fetches it and `scl capsule check-evidence`
#     convicts the writer with nothing but the capsule name (from a data
#     directory that knows nothing of the capsule); altered evidence does
#     not;
#  4. the forked writer's next record is refused (from the fork on it is
#     treated as revoked).
#
# Usage: test_fork.sh SCL FORKER
set -u
SCL=$(readlink -f "$1")
FORKER=$(readlink -f "$2")
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-fork-XXXXXX")
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
PORT=$(( 12000 + ($$ % 200) * 20 ))	# below the ephemeral ports; apart from other tests
A="tcp://127.0.0.1:$((PORT + 1))"
B="tcp://127.0.0.1:$((PORT + 2))"
wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

"$SCL" server --listen "$A" --data "$T/a" --peers "$B" --sync-ms 200 \
	--ready-file "$T/ready-a" 2>>"$T/a.log" &
pids="$pids $!"
"$SCL" server --listen "$B" --data "$T/b" --peers "$A" --sync-ms 200 \
	--ready-file "$T/ready-b" 2>>"$T/b.log" &
pids="$pids $!"
for f in a b; do wait_file "$T/ready-$f" || bad "server $f did not start"; done

for mode in owner writer; do
	export SCL_HOME="$T/home-$mode"
	"$FORKER" "$mode" "$A" "$B" 3000 >"$T/$mode.out" 2>&1 &
	fpid=$!
	for _ in $(seq 100); do [ "$(wc -l <"$T/$mode.out")" -ge 2 ] && break; sleep 0.05; done
	name=$(sed -n 1p "$T/$mode.out")
	writer=$(sed -n 2p "$T/$mode.out")
	printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok ||
		bad "$mode: forker: $(cat "$T/$mode.out")"
	short=$(printf '%s' "$writer" | cut -c1-8)
	# 1. both servers find the fork and keep evidence
	kept=0
	for _ in $(seq 100); do
		"$SCL" capsule evidence "$name" --servers "$A,$B" --out "$T/$mode.ev" \
			>/dev/null 2>"$T/$mode.evlog"
		kept=$(grep -c "keeps evidence" "$T/$mode.evlog")
		[ "$kept" = 2 ] && break
		sleep 0.1
	done
	[ "$kept" = 2 ] && ok || bad "$mode: $kept of 2 servers keep evidence: $(cat "$T/$mode.evlog")"
	grep -q "equivocated at record 6" "$T/$mode.evlog" && ok ||
		bad "$mode: the evidence does not name record 6: $(cat "$T/$mode.evlog")"
	# 2. verify fails and names writer and seqno
	if "$SCL" capsule verify "$name" --servers "$A,$B" --no-keys >"$T/$mode.verify" 2>&1; then
		bad "$mode: verify passed a forked capsule: $(cat "$T/$mode.verify")"
	elif grep -q "EQUIVOCATION.*$writer.*$short/6" "$T/$mode.verify"; then
		ok
	else
		bad "$mode: verify did not name $short/6: $(cat "$T/$mode.verify")"
	fi
	# 3. a third party with nothing but the name convicts the writer
	SCL_HOME="$T/stranger" "$SCL" capsule check-evidence "$name" \
		<"$T/$mode.ev" >"$T/$mode.check" 2>&1 &&
		grep -q "writer $writer equivocated at record 6" "$T/$mode.check" &&
		ok || bad "$mode: check-evidence: $(cat "$T/$mode.check")"
	cp "$T/$mode.ev" "$T/$mode.bad"
	printf 'x' | dd of="$T/$mode.bad" bs=1 seek=600 conv=notrunc 2>/dev/null
	if SCL_HOME="$T/stranger" "$SCL" capsule check-evidence "$name" \
		<"$T/$mode.bad" >"$T/$mode.check2" 2>&1; then
		bad "$mode: altered evidence convicted: $(cat "$T/$mode.check2")"
	else
		grep -q "INVALID" "$T/$mode.check2" && ok || bad "$mode: $(cat "$T/$mode.check2")"
	fi
	# 4. the forked writer is refused from the fork on
	wait "$fpid"
	grep -q "record 7 refused: .*equivocated at record 6" "$T/$mode.out" && ok ||
		bad "$mode: the forked writer's record 7: $(tail -n 1 "$T/$mode.out")"
done
echo "test_fork: $checks checks, $fails failed"
[ "$fails" = 0 ]

#!/bin/sh
# test_rollback.sh - servers restored from a backup serve every record
# they hold with valid signatures; only a client that remembers what it
# saw can tell they are behind.  Three real servers on loopback:
#
#  1. a writer appends 1..100, a reader reads them; the servers' stores
#     are backed up; the writer appends 101..150, the reader reads them;
#  2. every server is stopped and its store restored from the backup:
#     the servers now serve 1..100 and agree with each other;
#  3. the reader's read and verify fail with ROLLBACK naming record 150,
#     and the writer refuses to append (it would sign 101 again: a fork);
#     a stranger with no memory of the capsule reads 100 records, which
#     is the limit THREAT_MODEL.md "Rollback" states;
#  4. `scl capsule resolve` shows the conflict and exits 1; --accept
#     takes the served chain and appends work again;
#  5. a batch signed while every server is stopped and lost when they are
#     killed: the writer refuses to sign its seqno again until resolved;
#  6. an append that stops at a bad line leaves nothing to resolve.
#
# Usage: test_rollback.sh SCL
set -u
SCL=$(readlink -f "$1")
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-rollback-XXXXXX")
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
PORT=$(( 24000 + ($$ % 200) * 20 ))	# below the ephemeral ports; apart from other tests
addr() { echo "tcp://127.0.0.1:$((PORT + $1))"; }
ALL="$(addr 1),$(addr 2),$(addr 3)"

start_server() {
	i=$1
	peers=""
	for j in 1 2 3; do [ "$j" != "$i" ] && peers="$peers$(addr "$j"),"; done
	rm -f "$T/ready$i"
	"$SCL" server --listen "$(addr "$i")" --data "$T/s$i" \
		--peers "${peers%,}" --sync-ms 200 --ready-file "$T/ready$i" \
		2>>"$T/s$i.log" &
	eval "pid$i=$!"
	pids="$pids $!"
	for _ in $(seq 200); do [ -s "$T/ready$i" ] && return 0; sleep 0.05; done
	bad "server $i did not start"; cat "$T/s$i.log" >&2
}
stop_servers() {	# $1: the signal
	for i in 1 2 3; do eval "kill -$1 \$pid$i"; done
	for i in 1 2 3; do eval "wait \$pid$i" 2>/dev/null; done
}
W="$T/writer"
R="$T/reader"
as() { home=$1; shift; SCL_HOME="$home" "$SCL" "$@"; }

for i in 1 2 3; do start_server "$i"; done
name=$(as "$W" capsule create --servers "$ALL" --label rollback | tail -n 1)
printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok || bad "create: $name"
# The reader and the stranger hold the capsule's keys (a reader is anyone
# with the data key); what they lack or have is memory of the chain.
for h in "$R" "$T/stranger"; do mkdir -p "$h" && cp -a "$W/keys" "$h/"; done

# --- 1. append and read, back up, append and read more -----------------------
seq 1 100 | as "$W" capsule append "$name" --batch 10 >/dev/null &&
	ok || bad "append 1..100"
[ "$(as "$R" capsule read "$name" --servers "$ALL" | wc -l)" = 100 ] && ok ||
	bad "the reader did not read 100 records"
stop_servers TERM
for i in 1 2 3; do cp -a "$T/s$i" "$T/backup$i"; done
for i in 1 2 3; do start_server "$i"; done
seq 101 150 | as "$W" capsule append "$name" --batch 10 >/dev/null &&
	ok || bad "append 101..150"
[ "$(as "$R" capsule read "$name" --servers "$ALL" | tail -n 1)" = 150 ] && ok ||
	bad "the reader did not read up to 150"
as "$R" capsule verify "$name" --servers "$ALL" >"$T/verify0" 2>&1 && ok ||
	bad "verify before the rollback: $(cat "$T/verify0")"

# --- 2. every server restored from the backup --------------------------------
stop_servers TERM
for i in 1 2 3; do rm -rf "$T/s$i"; cp -a "$T/backup$i" "$T/s$i"; done
for i in 1 2 3; do start_server "$i"; done

# --- 3. the reader and the writer notice; a stranger cannot ------------------
owner=$(as "$W" capsule inspect "$name" --summary | sed -n 's/^  owner *//p')
if as "$R" capsule read "$name" --servers "$ALL" >"$T/read1" 2>&1; then
	bad "the reader read a rolled-back capsule: $(tail -n 2 "$T/read1")"
elif grep -q "ROLLBACK: writer .* only up to record 100, .*/150 verified before" "$T/read1"; then
	ok
else
	bad "the reader's read did not name the rollback: $(cat "$T/read1")"
fi
if as "$R" capsule verify "$name" --servers "$ALL" >"$T/verify1" 2>&1; then
	bad "verify passed a rolled-back capsule: $(cat "$T/verify1")"
else
	grep -q "^ROLLBACK:" "$T/verify1" && grep -q "FAILED:.*1 rollback" "$T/verify1" &&
		ok || bad "verify did not report the rollback: $(cat "$T/verify1")"
fi
if echo again | as "$W" capsule append "$name" >"$T/append1" 2>&1; then
	bad "the writer appended to a rolled-back chain (it signed 101 twice)"
else
	grep -q "ROLLBACK" "$T/append1" && ok ||
		bad "the writer's refusal does not say ROLLBACK: $(cat "$T/append1")"
fi
[ "$(as "$T/stranger" capsule read "$name" --servers "$ALL" --writer "$owner" |
	wc -l)" = 100 ] && ok ||
	bad "a client with no memory should read the 100 restored records"

# --- 4. resolve shows, --accept takes the served chain -----------------------
if as "$W" capsule resolve "$name" >"$T/resolve1" 2>&1; then
	bad "resolve exited 0 with a conflict: $(cat "$T/resolve1")"
else
	grep -q "seen 150, signed up to 150; the servers serve 100: ROLLBACK" "$T/resolve1" &&
		ok || bad "resolve did not show the conflict: $(cat "$T/resolve1")"
fi
as "$W" capsule resolve "$name" --accept >"$T/resolve2" 2>&1 &&
	grep -q "accepted what is served now for 1 writer" "$T/resolve2" && ok ||
	bad "resolve --accept: $(cat "$T/resolve2")"
echo after | as "$W" capsule append "$name" >"$T/append2" 2>&1 &&
	grep -q "seqno 101..101" "$T/append2" && ok ||
	bad "append after resolve: $(cat "$T/append2")"
as "$R" capsule resolve "$name" --accept >/dev/null 2>&1 &&
	as "$R" capsule verify "$name" >"$T/verify2" 2>&1 && ok ||
	bad "verify after resolve: $(cat "$T/verify2")"

# --- 5. a batch signed but never stored --------------------------------------
# The writer loads its head from the servers, then waits on its input;
# only then are the servers stopped, so the batch is signed and lost.
mkfifo "$T/in"
SCL_HOME="$W" SCL_TIMEOUT_MS=500 SCL_RETRIES=0 "$SCL" capsule append "$name" \
	<"$T/in" >"$T/append3" 2>&1 &
apid=$!
exec 3>"$T/in"
for _ in $(seq 400); do	# until it blocks in read(0, ...)
	case $(cat "/proc/$apid/syscall" 2>/dev/null) in "0 0x0 "*) break ;; esac
	sleep 0.05
done
for i in 1 2 3; do eval "kill -STOP \$pid$i"; done
echo lost >&3
exec 3>&-
if wait "$apid"; then
	bad "an append with every server stopped succeeded: $(cat "$T/append3")"
else
	ok
fi
for i in 1 2 3; do eval "kill -9 \$pid$i"; eval "wait \$pid$i" 2>/dev/null; done
for i in 1 2 3; do start_server "$i"; done
if echo again | as "$W" capsule append "$name" >"$T/append4" 2>&1; then
	bad "the writer signed record 102 twice: $(cat "$T/append4")"
else
	grep -q "may already have signed record .*/102" "$T/append4" && ok ||
		bad "the refusal does not name 102: $(cat "$T/append4")"
fi
if as "$W" capsule resolve "$name" >"$T/resolve3" 2>&1; then
	bad "resolve exited 0 with an unacknowledged batch"
else
	grep -q "signed up to 102; the servers serve 101: UNACKNOWLEDGED" \
		"$T/resolve3" && ok || bad "resolve: $(cat "$T/resolve3")"
fi
as "$W" capsule resolve "$name" --accept >/dev/null 2>&1 &&
	echo again | as "$W" capsule append "$name" 2>&1 | grep -q "seqno 102..102" &&
	ok || bad "append after accepting the lost batch"

# --- 6. an append refused for its input gives back what it did not sign ------
# (it reserves seqnos ahead to save fsyncs; a false alarm here would make
# every mistyped append need a resolve)
{ seq 1 200; head -c 5000000 /dev/zero | tr '\0' x; echo; } |
	as "$W" capsule append "$name" --batch 64 >"$T/append5" 2>&1 &&
	bad "a 5 MB line was accepted"
grep -q "line 201" "$T/append5" && ok || bad "the refusal: $(cat "$T/append5")"
echo next | as "$W" capsule append "$name" >"$T/append6" 2>&1 && ok ||
	bad "after a refused line the writer refused to go on: $(cat "$T/append6")"
as "$W" capsule verify "$name" >"$T/verify3" 2>&1 && ok ||
	bad "verify at the end: $(cat "$T/verify3")"

echo "test_rollback: $checks checks, $fails failed"
[ "$fails" = 0 ]

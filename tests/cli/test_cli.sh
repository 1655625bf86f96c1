#!/bin/sh
# test_cli.sh - the scl command end to end: help, misuse, the capsule
# life cycle on real files, bad input of every kind, and a byte flipped
# on disk.  Usage: test_cli.sh SCL FLIPBYTE
set -u
SCL=$1
FLIP=$2
T=$(mktemp -d "${TMPDIR:-/tmp}/scl-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
export SCL_HOME="$T/home"
fails=0
checks=0

ok() { checks=$((checks + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }

# expect CODE NEEDLE CMD...: exit code and a substring of stdout+stderr.
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

# --- help everywhere ---------------------------------------------------
expect 0 "Commands:" "$SCL" --help
expect 2 "Usage:" "$SCL"
expect 2 "unknown command" "$SCL" frobnicate
for sub in create append read verify inspect prove check-proof; do
	expect 0 "Usage: scl capsule $sub" "$SCL" capsule "$sub" --help
	expect 0 "Usage: scl capsule $sub" "$SCL" help capsule "$sub"
done
expect 0 "capsule check-proof" "$SCL" capsule --help
for sub in gen show measure serve revoke rotate; do
	expect 0 "Usage: scl keys $sub" "$SCL" keys "$sub" --help
done
for sub in capsule server boundary actors; do
	expect 0 "Usage: scl bench $sub" "$SCL" bench "$sub" --help
done
expect 0 "Usage: scl worker" "$SCL" worker --help
for sub in put get delete scan status; do
	expect 0 "Usage: scl kv $sub" "$SCL" kv "$sub" --help
done
expect 0 "Usage: scl router" "$SCL" router --help
expect 0 "Usage: scl router status" "$SCL" router status --help
expect 0 "Usage: scl bench kv" "$SCL" bench kv --help
expect 2 "--worker ENDPOINT is required" "$SCL" kv get somekey
expect 2 "--listen ENDPOINT is required" "$SCL" router
expect 2 "unknown key 'jitter'" "$SCL" router --listen tcp://127.0.0.1:1 \
	--chaos jitter=1
expect 1 "did not answer" "$SCL" kv get k --worker tcp://127.0.0.1:1 \
	--timeout-ms 300
expect 0 "Usage: scl server" "$SCL" server --help
expect 2 "--listen ENDPOINT is required" "$SCL" keys serve \
	"$(printf '%064d' 0)" --allow "$(printf '%064d' 1)"
expect 2 "give at least one --allow" "$SCL" keys serve "$(printf '%064d' 0)" \
	--listen tcp://127.0.0.1:1
expect 0 "Usage: scl keys gen" "$SCL" keys gen --help
expect 0 "Usage: scl bench capsule" "$SCL" bench capsule --help
expect 0 "format v1" "$SCL" version

# --- misuse exits 2 with a usage line ------------------------------------
expect 2 "missing argument" "$SCL" capsule append
expect 2 "64 hex digits" "$SCL" capsule read nothex
expect 2 "unknown option '--bogus'" "$SCL" capsule create --bogus
expect 2 "--batch must be a whole number" "$SCL" capsule append \
	0000000000000000000000000000000000000000000000000000000000000000 --batch 0
expect 2 "see 'scl capsule verify --help'" "$SCL" capsule verify a b
expect 2 "--out FILE is required" "$SCL" keys gen
expect 1 "no capsule 0000" "$SCL" capsule verify \
	0000000000000000000000000000000000000000000000000000000000000000

# --- identities ------------------------------------------------------------
expect 0 "public key:" "$SCL" keys gen --out "$T/owner.key"
[ "$(stat -c %a "$T/owner.key")" = 600 ] && ok || bad "key file mode"
expect 1 "refusing to overwrite" "$SCL" keys gen --out "$T/owner.key"
pk=$("$SCL" keys show "$T/owner.key")

# --- create, append, read, verify ------------------------------------------
name=$("$SCL" capsule create --label cli-test --owner-key "$T/owner.key" |
	tail -n 1)
printf '%s' "$name" | grep -Eq '^[0-9a-f]{64}$' && ok || bad "name '$name'"
"$SCL" capsule inspect "$name" | grep -q "owner    $pk" && ok ||
	bad "owner is not the key file's"
seq 1 1000 | sed 's/^/line /' >"$T/in.txt"
expect 2 "record-version" "$SCL" capsule append "$name" --record-version 4 \
	--file "$T/in.txt"
# Records v1 (BLAKE2b) first, as for servers of an older build; the
# appends below write v3 (SHA-256, salted record keys) onto the same
# chain.
expect 0 "appended 1000 records (seqno 1..1000) in 16 batches" \
	"$SCL" capsule append "$name" --file "$T/in.txt" --record-version 1
"$SCL" capsule read "$name" >"$T/out.txt" && cmp -s "$T/in.txt" "$T/out.txt" &&
	ok || bad "read back differs"
[ "$("$SCL" capsule read "$name" --from 500 --to 502 | tr '\n' ,)" = \
	"line 500,line 501,line 502," ] && ok || bad "range read"
printf 'tail a\ntail b' | "$SCL" capsule append "$name" --batch 1 >/dev/null &&
	ok || bad "append from stdin"
[ "$("$SCL" capsule read "$name" --from 1001)" = "tail a
tail b" ] && ok || bad "stdin payloads"
expect 0 "1 writer, 1002 records, 18 heartbeats" "$SCL" capsule verify "$name"
[ "$("$SCL" capsule inspect "$name" | grep -c ' data   v1 ')" = 1000 ] &&
	[ "$("$SCL" capsule inspect "$name" | grep -c ' data   v3 ')" = 2 ] &&
	ok || bad "inspect: 1000 records v1, then 2 v3"
expect 0 "no keys: payloads not decrypted" "$SCL" capsule verify "$name" --no-keys
expect 1 "outside 1..1002" "$SCL" capsule read "$name" --from 5 --to 2000
"$SCL" capsule inspect "$name" | grep -q "line 1" && bad "inspect shows plaintext" || ok

# --- proofs -------------------------------------------------------------------
"$SCL" capsule prove "$name" 777 >"$T/p.proof" && ok || bad "prove"
expect 0 "ok: record" "$SCL" capsule check-proof "$name" --file "$T/p.proof"
cp "$T/p.proof" "$T/bad.proof"
printf '\377' | dd of="$T/bad.proof" bs=1 seek=300 conv=notrunc 2>/dev/null
expect 1 "INVALID" "$SCL" capsule check-proof "$name" --file "$T/bad.proof"
other=$("$SCL" capsule create --label other | tail -n 1)
expect 1 "not to the capsule name" "$SCL" capsule check-proof "$other" \
	--file "$T/p.proof"

# --- bad input leaves the capsule exactly as it was ----------------------------
cp -r "$SCL_HOME/store" "$T/store.before"
{ echo ok-line; head -c 4200000 /dev/zero | tr '\0' x; echo; } >"$T/huge.txt"
expect 1 "line 2 is 4200000 bytes" "$SCL" capsule append "$name" --file "$T/huge.txt"
expect 1 "stored 0 records" "$SCL" capsule append "$name" --file "$T/huge.txt"
expect 1 "cannot open" "$SCL" capsule append "$name" --file "$T/missing.txt"
expect 0 "1002 records" "$SCL" capsule verify "$name"
ring="$SCL_HOME/keys/$name.keyring"
cp "$ring" "$T/ring.bak"
chmod 644 "$ring"
expect 1 "chmod 600" "$SCL" capsule read "$name"
chmod 600 "$ring"
cp "$SCL_HOME/keys/$other.keyring" "$ring"
expect 1 "belongs to another capsule" "$SCL" capsule append "$name" \
	--file "$T/in.txt"
cp "$T/ring.bak" "$ring"
printf '\002' | dd of="$ring" bs=1 seek=4 conv=notrunc 2>/dev/null
expect 1 "version 2" "$SCL" capsule read "$name"
cp "$T/ring.bak" "$ring"
truncate -s 20 "$ring"
expect 1 "truncated" "$SCL" capsule read "$name"
cp "$T/ring.bak" "$ring"
chmod 600 "$ring"
expect 0 "1002 records" "$SCL" capsule verify "$name"
[ "$("$SCL" capsule read "$name" | wc -l)" = 1002 ] && ok || bad "count"

# --- a byte flipped on disk is found and named ----------------------------------
# Record 5's header: capsule name, writer, then seqno 5 little-endian;
# 8 bytes past the seqno is its Lamport time.
pat="${name}${pk}0500000000000000"
"$FLIP" "$SCL_HOME/store/data.mdb" "$pat" 72 >/dev/null && ok || bad "flip"
expect 1 "record ${pk%"${pk#????????}"}/5: content does not match" \
	"$SCL" capsule verify "$name"
expect 1 "/5:" "$SCL" capsule read "$name" --from 1 --to 10
"$FLIP" "$SCL_HOME/store/data.mdb" "$pat" 72 >/dev/null
expect 0 "ok:" "$SCL" capsule verify "$name"

echo "test_cli: $checks checks, $fails failed"
[ "$fails" = 0 ]

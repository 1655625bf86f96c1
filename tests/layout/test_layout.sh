#!/bin/sh
# test_layout.sh - the layout DESIGN §6 and §9 promise, checked on the
# source and on the objects the compiler made from it:
#
#  1. the trusted core (src/core/) includes, directly or through the
#     public headers it includes, nothing of the untrusted host, the
#     client, the router, the network protocol, the servers or ZeroMQ;
#  2. the objects of the core and of the modules it runs (kv, capsule,
#     actors, codec, crypto) call no such code either (nm);
#  3. no file of the untrusted host (src/worker/) is over 600 lines.
#
# Usage: test_layout.sh SOURCE_DIR BUILD_DIR
set -u
SRC=$1
BUILD=$2
fails=0
checks=0
ok() { checks=$((checks + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); checks=$((checks + 1)); }

FORBIDDEN_HEADERS="zmq.h scl/worker.h scl/client.h scl/router.h scl/proto.h \
scl/zsock.h scl/kvclient.h scl/server.h scl/store.h scl/broker.h lmdb.h"

# The scl/ headers a file includes, and theirs, to the end.
closure() {
	todo="$*"
	seen=""
	while [ -n "$todo" ]; do
		set -- $todo
		h=$1
		shift
		todo="$*"
		case " $seen " in *" $h "*) continue ;; esac
		seen="$seen $h"
		[ -f "$SRC/include/$h" ] || continue
		for n in $(sed -n 's/^#include "\(scl\/[a-z_]*\.h\)".*/\1/p' \
			"$SRC/include/$h"); do
			todo="$todo $n"
		done
	done
	echo "$seen"
}

direct=$(cat "$SRC"/src/core/*.c "$SRC"/src/core/*.h |
	sed -n 's/^#include [<"]\([^>"]*\)[>"].*/\1/p' | sort -u)
for h in $direct; do
	case "$h" in
	../*|*worker*) bad "src/core includes $h" ;;
	esac
done
all=$(closure $(echo "$direct" | grep '^scl/'))
for f in $FORBIDDEN_HEADERS; do
	case " $all $direct " in
	*" $f "*) bad "src/core reaches $f (through: $all)" ;;
	*) ok ;;
	esac
done

objs=""
for m in core kv capsule actors codec crypto; do
	objs="$objs $(find "$BUILD/CMakeFiles/scl.dir/src/$m" -name '*.o')"
done
[ -n "$(echo $objs)" ] && ok || bad "no objects of the core under $BUILD"
for o in $objs; do
	calls=$(nm -u "$o" | awk '{print $2}' |
		grep -E '^(zmq_|mdb_|scl_worker|scl_client|scl_router|scl_msg_|scl_server|scl_store|scl_zsock|scl_kvclient|scl_broker)' |
		tr '\n' ' ')
	[ -z "$calls" ] && ok || bad "$(basename "$o") calls $calls"
done

for f in "$SRC"/src/worker/*; do
	n=$(wc -l <"$f")
	[ "$n" -le 600 ] && ok || bad "$f has $n lines (at most 600)"
done

echo "test_layout: $checks checks, $fails failed"
[ "$fails" = 0 ]

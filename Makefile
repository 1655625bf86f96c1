# SCL: the two commands a person needs are `make demo` and `make test`.
# Each installs what it needs (Debian packages via apt, only when missing),
# configures CMake and builds; nothing has to be set up by hand.

SHELL := /bin/bash
JOBS ?= $(shell nproc)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
GEN := $(shell command -v ninja >/dev/null 2>&1 && echo -G Ninja)
FUZZ_SECONDS ?= 120
FUZZ_SMOKE_SECONDS ?= 5

# Everything the build, tests, demo and benchmarks use.
DEPS := gcc make cmake ninja-build pkgconf clang libclang-rt-14-dev \
	libsodium-dev libssl-dev liblmdb-dev libzmq3-dev libcmocka-dev \
	libseccomp-dev lmdb-utils iproute2 procps
# The benchmarks' peer; only `make bench` installs it (on a systemd host
# the package also starts a redis service, which tests do not need).
BENCH_DEPS := redis-server

FUZZ_TARGETS := meta cert record heartbeat keyring proof verify proto attest core core_msg kvclient router kv

# The tests whose subject is concurrency run again under ThreadSanitizer.
# Not test_enclave: its process backend's seccomp filter kills the
# TSan runtime's helper thread (it reads /proc), and TSan cannot see
# memory shared across processes anyway; test_ring covers the rings.
TSAN_TESTS := test_ring test_actors test_store

.PHONY: all deps release asan tsan fuzz-build test unit race fuzz-smoke fuzz \
	demo bench profile clean help

all: release

help:
	@echo "make demo   install deps, build, run the end-to-end demo"
	@echo "make test   install deps, build with ASan+UBSan, run every test"
	@echo "make bench  run the benchmarks (JSON lines)"
	@echo "make fuzz   run every fuzzer for FUZZ_SECONDS ($(FUZZ_SECONDS)) each"
	@echo "make profile  a release build perf can walk (frame pointers)"

deps:
	@missing=""; for p in $(DEPS) $(EXTRA_DEPS); do \
		dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			--no-install-recommends $$missing; \
	fi

release: deps
	cmake $(GEN) -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/release -j $(JOBS)

# Release code with frame pointers, for `perf record --call-graph fp`:
# the release build's call graphs stop at the first frame.
profile: deps
	cmake $(GEN) -S . -B build/profile -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS="-fno-omit-frame-pointer -mno-omit-leaf-frame-pointer" \
		>/dev/null
	cmake --build build/profile -j $(JOBS)
	@echo "profile: run build/profile/scl (e.g. bench kv --workers 3) and, meanwhile,"
	@echo "  perf record -a --call-graph fp -o perf.data -- sleep 5"

asan: deps
	cmake $(GEN) -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSCL_SANITIZE=ON >/dev/null
	cmake --build build/asan -j $(JOBS)

tsan: deps
	cmake $(GEN) -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSCL_TSAN=ON >/dev/null
	cmake --build build/tsan -j $(JOBS) $(addprefix --target ,$(TSAN_TESTS))

fuzz-build: deps
	CC=clang cmake $(GEN) -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DSCL_FUZZ=ON >/dev/null
	cmake --build build/fuzz -j $(JOBS) \
		$(addprefix --target fuzz_,$(FUZZ_TARGETS))

unit: asan
	cd build/asan && ctest --output-on-failure -j $(JOBS)

# Each fuzzer, briefly, from the committed corpus (new inputs go to a
# scratch directory, so the tree stays clean).
fuzz-smoke: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
		mkdir -p build/fuzz/work/$$t; \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SMOKE_SECONDS) \
			-print_final_stats=1 build/fuzz/work/$$t \
			tests/fuzz/corpus/$$t 2>build/fuzz/$$t.log || \
			{ tail -40 build/fuzz/$$t.log; exit 1; }; \
		echo "fuzz $$t: $$(grep -o 'number_of_executed_units: [0-9]*' \
			build/fuzz/$$t.log | cut -d' ' -f2) runs, no findings"; \
	done

race: tsan
	cd build/tsan && ctest --output-on-failure -j $(JOBS) \
		-R '^($(subst $(eval) ,|,$(TSAN_TESTS)))$$'

test: unit race fuzz-smoke

fuzz:
	$(MAKE) fuzz-smoke FUZZ_SMOKE_SECONDS=$(FUZZ_SECONDS)

demo: release
	scripts/demo.sh build/release/scl build/release/flipbyte

bench:
	$(MAKE) deps release EXTRA_DEPS="$(BENCH_DEPS)"
	build/release/scl bench capsule
	build/release/scl bench server
	build/release/scl bench boundary
	build/release/scl bench actors
	build/release/scl bench kv --ratio-pairs 3

clean:
	rm -rf build

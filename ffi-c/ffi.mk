# Targets for ffi-c/ (the C ABI) and examples/c/, included by the top-level Makefile.
#
#   make dist-c     dist/include/cellgate.h, dist/lib/libcellgate.{a,so}, dist/lib/pkgconfig/cellgate.pc
#   make install    the same under PREFIX (default /usr/local; DESTDIR honoured)
#   make test-c     header freshness, C tests under ASan+UBSan and valgrind, a C++ compile
#   make test-c-redis  examples/c/redis_client.c (hiredis) against a real redis-server
#   make demo-c     the example HTTP service answering 200s, then 429s
#   make bench-c    the keyed check from C against the same Rust call
#   make bench-c-limiter  cg_limiter_check, in process and shared, against the keyed check
#   make header-c   regenerate ffi-c/include/cellgate.h (commit it)
#
# Overridable: CC, CXX, PREFIX, DESTDIR, VALGRIND, FFI_HAMMER_THREADS, FFI_BENCH_KEYS,
# FFI_BENCH_ARGS.

CC ?= cc
CXX ?= c++
PREFIX ?= /usr/local
VALGRIND ?= valgrind
FFI_DIST := $(CURDIR)/dist
FFI_BUILD := $(TARGET_DIR)/ffi-c
# The ABI version in the SONAME (see ffi-c/build.rs) and the full version, from the header.
FFI_VERSION = $(shell sed -n 's/^\#define CG_VERSION "\(.*\)"/\1/p' ffi-c/include/cellgate.h)
FFI_VERSION_WORDS = $(subst ., ,$(FFI_VERSION))
FFI_SOVERSION = $(if $(filter 0,$(word 1,$(FFI_VERSION_WORDS))),0.$(word 2,$(FFI_VERSION_WORDS)),$(word 1,$(FFI_VERSION_WORDS)))
# What the static library needs from the system (rustc --print native-static-libs).
FFI_STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
FFI_CFLAGS := -std=c11 -Wall -Wextra -Werror -O1 -g
FFI_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FFI_C_TESTS := ffi-c/tests/c/main.c ffi-c/tests/c/test_api.c ffi-c/tests/c/test_vectors.c \
	ffi-c/tests/c/test_limiter.c ffi-c/tests/c/test_headers.c ffi-c/tests/c/test_threads.c \
	ffi-c/tests/c/test_shared.c
FFI_HAMMER_THREADS ?= 4
# bench-c: table sizes, checks per round, rounds per run, runs (interleaved).
FFI_BENCH_KEYS ?= 1000 1000000
FFI_BENCH_ARGS ?= 1000000 5 5
FFI_BENCH_C := ffi-c/bench/bench_keyed.c
# libcellgate (and the Rust side of bench-c, for like-for-like code) is built in one codegen
# unit: the workspace Cargo.toml sets [profile.release.package.cellgate-ffi]. With the default
# 16, the core's generic keyed check is placed in another unit than the exported function and
# called from it, a second call frame: about 35 instructions and 5 to 10 ns per keyed check
# (BENCHMARKS.md, "C ABI"). In one unit it is inlined into the exported function, as it is
# into a Rust caller's function.

.PHONY: setup-c header-c dist-c install test-c demo-c bench-c bench-c-limiter setup-hiredis test-c-redis

setup-c: ## Check (and on Debian/Ubuntu as root, install) cc, c++, pkg-config, valgrind, python3, curl
	@$(PRELUDE)
	missing=
	for tool in "$(CC):gcc" "$(CXX):g++" pkg-config:pkg-config valgrind:valgrind curl:curl; do
		command -v "$${tool%%:*}" >/dev/null || missing="$$missing $${tool##*:}"
	done
	command -v python3 >/dev/null || missing="$$missing python3"
	if [ -n "$$missing" ]; then
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then
			step apt-get update -q
			step env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing
		else
			echo "missing tools:$$missing (install them, e.g. apt-get install$$missing)" >&2
			exit 1
		fi
	fi

header-c: ## Regenerate ffi-c/include/cellgate.h with cbindgen (pinned dev-dependency); commit it
	@$(PRELUDE)
	step env CELLGATE_BLESS=1 $(CARGO) test $(LOCKED) -p cellgate-ffi --test header

# Writes dist/lib/pkgconfig/cellgate.pc for prefix $(1) (`$${pcfiledir}/../..` keeps dist/
# relocatable).
define FFI_PC
prefix=$(1)
libdir=$${prefix}/lib
includedir=$${prefix}/include

Name: cellgate
Description: Exact, lock-free rate limiting (GCRA, token bucket, keyed tables, policies)
Version: $(FFI_VERSION)
Cflags: -I$${includedir}
Libs: -L$${libdir} -lcellgate
Libs.private: $(FFI_STATIC_LIBS)
endef

dist-c: ## Build libcellgate (release) into dist/: include/cellgate.h, lib/libcellgate.{a,so}, lib/pkgconfig/cellgate.pc
	@$(PRELUDE)
	step $(CARGO) build $(LOCKED) -p cellgate-ffi --release
	mkdir -p dist/include dist/lib/pkgconfig
	step install -m 644 ffi-c/include/cellgate.h dist/include/cellgate.h
	step install -m 644 $(TARGET_DIR)/release/libcellgate_ffi.a dist/lib/libcellgate.a
	step install -m 755 $(TARGET_DIR)/release/libcellgate_ffi.so dist/lib/libcellgate.so.$(FFI_VERSION)
	ln -sfn libcellgate.so.$(FFI_VERSION) dist/lib/libcellgate.so.$(FFI_SOVERSION)
	ln -sfn libcellgate.so.$(FFI_SOVERSION) dist/lib/libcellgate.so
	cat > dist/lib/pkgconfig/cellgate.pc <<'EOF'
	$(call FFI_PC,$${pcfiledir}/../..)
	EOF
	step env PKG_CONFIG_PATH=dist/lib/pkgconfig pkg-config --modversion --cflags --libs cellgate

install: dist-c ## Install the C library, header and cellgate.pc under PREFIX (default /usr/local; DESTDIR too)
	@$(PRELUDE)
	root="$(DESTDIR)$(PREFIX)"
	step install -d "$$root/include" "$$root/lib/pkgconfig"
	step install -m 644 dist/include/cellgate.h "$$root/include/cellgate.h"
	step install -m 644 dist/lib/libcellgate.a "$$root/lib/libcellgate.a"
	step install -m 755 dist/lib/libcellgate.so.$(FFI_VERSION) "$$root/lib/libcellgate.so.$(FFI_VERSION)"
	ln -sfn libcellgate.so.$(FFI_VERSION) "$$root/lib/libcellgate.so.$(FFI_SOVERSION)"
	ln -sfn libcellgate.so.$(FFI_SOVERSION) "$$root/lib/libcellgate.so"
	cat > "$$root/lib/pkgconfig/cellgate.pc" <<'EOF'
	$(call FFI_PC,$(PREFIX))
	EOF
	echo "installed under $$root (ldconfig may be needed for the shared library)"



# The C tests against dist/: once under ASan+UBSan (static library), once under valgrind
# (shared library through pkg-config, as an application links it). Then a C++ build of the
# header, and the example service and benchmark built with the same flags so they cannot rot.
test-c: setup-c dist-c ## C ABI: header freshness, C tests under ASan+UBSan and valgrind (vectors, header vectors, threads, NULLs), C++ header build
	@$(PRELUDE)
	# The header freshness test, with test-rust's exact cargo arguments so that it reuses
	# that build (cbindgen included) instead of rebuilding with other features.
	step $(CARGO) test $(LOCKED) --workspace --all-features --exclude cellgate-py \
		--exclude cellgate-node --test header
	export PKG_CONFIG_PATH="$(FFI_DIST)/lib/pkgconfig"
	mkdir -p "$(FFI_BUILD)"
	step python3 ffi-c/tests/vectors_to_lines.py testdata/vectors "$(FFI_BUILD)/vectors.txt"
	step python3 ffi-c/tests/headers_to_lines.py testdata/headers "$(FFI_BUILD)/headers.txt"
	step $(CC) $(FFI_CFLAGS) $(FFI_SANITIZE) -pthread $$(pkg-config --cflags cellgate) \
		$(FFI_C_TESTS) "$(FFI_DIST)/lib/libcellgate.a" $(FFI_STATIC_LIBS) -o "$(FFI_BUILD)/tests-asan"
	step env ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$(FFI_BUILD)/tests-asan" "$(FFI_BUILD)/vectors.txt" "$(FFI_BUILD)/headers.txt" \
		$(FFI_HAMMER_THREADS) 50000
	# The C block of the top-level README.md ("From C"), compiled as it stands and flooded with
	# 100,000 new keys into a table for 1,000 under 1/hour (ffi-c/tests/c/readme_main.c): served
	# only when allowed, a full table answered 429 with Retry-After, never 503.
	step python3 ffi-c/tests/readme_snippet.py README.md "$(FFI_BUILD)/readme_snippet.c"
	step $(CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $$(pkg-config --cflags cellgate) \
		"$(FFI_BUILD)/readme_snippet.c" ffi-c/tests/c/readme_main.c \
		"$(FFI_DIST)/lib/libcellgate.a" $(FFI_STATIC_LIBS) -o "$(FFI_BUILD)/readme-asan"
	step env ASAN_OPTIONS=detect_leaks=1 "$(FFI_BUILD)/readme-asan"
	step $(CC) $(FFI_CFLAGS) -pthread $$(pkg-config --cflags cellgate) $(FFI_C_TESTS) \
		$$(pkg-config --libs cellgate) -Wl,-rpath,"$(FFI_DIST)/lib" -o "$(FFI_BUILD)/tests"
	step $(VALGRIND) -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite,indirect,possible --show-leak-kinds=definite,indirect,possible \
		"$(FFI_BUILD)/tests" "$(FFI_BUILD)/vectors.txt" "$(FFI_BUILD)/headers.txt" \
		$(FFI_HAMMER_THREADS) 10000
	step $(CXX) -std=c++11 -Wall -Wextra -Werror -pedantic $$(pkg-config --cflags cellgate) \
		ffi-c/tests/cpp/header.cpp $$(pkg-config --libs cellgate) -Wl,-rpath,"$(FFI_DIST)/lib" \
		-o "$(FFI_BUILD)/header-cpp"
	step "$(FFI_BUILD)/header-cpp"
	step $(CC) -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c dist/include/cellgate.h
	# Built, not run: the benchmark (make bench-c) cannot rot.
	step $(CC) -std=c11 -O2 -Wall -Wextra -Werror $$(pkg-config --cflags cellgate) $(FFI_BENCH_C) \
		$$(pkg-config --libs cellgate) -o "$(FFI_BUILD)/bench-keyed-built"
	step $(CC) -std=c11 -O2 -Wall -Wextra -Werror $$(pkg-config --cflags cellgate) \
		ffi-c/bench/bench_limiter.c $$(pkg-config --libs cellgate) -o "$(FFI_BUILD)/bench-limiter-built"
	# The example service under ASan+UBSan, driven as make demo-c does (about 3 s); demo.sh
	# fails if the server does not exit cleanly (a sanitizer report, a leak, a hang).
	step $(CC) $(FFI_CFLAGS) $(FFI_SANITIZE) -pthread $$(pkg-config --cflags cellgate) \
		examples/c/server.c "$(FFI_DIST)/lib/libcellgate.a" $(FFI_STATIC_LIBS) \
		-o "$(FFI_BUILD)/server-asan"
	step env ASAN_OPTIONS=detect_leaks=1 examples/c/demo.sh "$(FFI_BUILD)/server-asan"
	# Idle and trickling clients (slowloris) against the same build: another client is still
	# served, the head deadline closes them, SIGTERM stops it (about 4 s; the test stops the
	# server however it ends).
	step env ASAN_OPTIONS=detect_leaks=1 python3 examples/c/slow_clients_test.py \
		"$(FFI_BUILD)/server-asan"
	# A full table is a refusal like any other: 64 client addresses into a table for one are
	# answered 200 or 429 with Retry-After, RateLimit headers and core's body, never 503.
	step env ASAN_OPTIONS=detect_leaks=1 python3 examples/c/full_table_test.py \
		"$(FFI_BUILD)/server-asan"

demo-c: setup-c dist-c ## The C example service (examples/c/): 200s turning into 429s with Retry-After and RateLimit headers per client IP
	@$(PRELUDE)
	export PKG_CONFIG_PATH="$(FFI_DIST)/lib/pkgconfig"
	mkdir -p "$(FFI_BUILD)"
	step $(CC) -std=c11 -O2 -Wall -Wextra -Werror -pthread $$(pkg-config --cflags cellgate) \
		examples/c/server.c $$(pkg-config --libs cellgate) -Wl,-rpath,"$(FFI_DIST)/lib" \
		-o "$(FFI_BUILD)/server"
	# demo.sh starts the server on a free port of 127.0.0.1 and stops it on any exit (trap).
	step examples/c/demo.sh "$(FFI_BUILD)/server"

# The keyed check from C (static and shared library) against the same Rust call, in the same
# loop with the same keys; see ffi-c/bench/ and BENCHMARKS.md ("C ABI").
bench-c: setup-c dist-c ## Benchmark the keyed check from C against the same Rust call (time, and instructions per check)
	@$(PRELUDE)
	step $(CARGO) build $(LOCKED) --release -p cellgate-ffi --features bench --bins
	export PKG_CONFIG_PATH="$(FFI_DIST)/lib/pkgconfig"
	mkdir -p "$(FFI_BUILD)"
	step $(CC) -std=c11 -O2 -Wall -Wextra -Werror $$(pkg-config --cflags cellgate) $(FFI_BENCH_C) \
		"$(FFI_DIST)/lib/libcellgate.a" $(FFI_STATIC_LIBS) -o "$(FFI_BUILD)/bench-keyed-static"
	step $(CC) -std=c11 -O2 -Wall -Wextra -Werror $$(pkg-config --cflags cellgate) $(FFI_BENCH_C) \
		$$(pkg-config --libs cellgate) -Wl,-rpath,"$(FFI_DIST)/lib" -o "$(FFI_BUILD)/bench-keyed-shared"
	bin="$(TARGET_DIR)/release"
	variants=("$$bin/cellgate-bench-keyed rust" "$$bin/cellgate-bench-keyed rust_via_c_abi"
		"$(FFI_BUILD)/bench-keyed-static c_static" "$(FFI_BUILD)/bench-keyed-shared c_shared"
		"$$bin/cellgate-bench-keyed-const-args" "$$bin/cellgate-bench-keyed-check-only")
	lscpu | grep -E '^(Model name|CPU\(s\)|Hypervisor vendor)' || true
	# Priority, as for the other benchmarks here (a warning, not an error, without root).
	for keys in $(FFI_BENCH_KEYS); do
		step nice -n -20 python3 ffi-c/bench/compare.py time "$$keys" $(FFI_BENCH_ARGS) -- "$${variants[@]}"
	done
	step python3 ffi-c/bench/compare.py instructions 1000 100000 -- "$${variants[@]}"

# cg_limiter_check (in process, and host-wide over /dev/shm) against cg_keyed_limiter_check,
# in one run: what the product and the shared table add to the keyed check (ffi-c/bench/
# bench_limiter.c; BENCHMARKS.md, "C ABI").
FFI_BENCH_LIMITER_ARGS ?= 1000 1000000 5 5
bench-c-limiter: setup-c dist-c ## Benchmark cg_limiter_check, in process and shared, against cg_keyed_limiter_check (same run)
	@$(PRELUDE)
	export PKG_CONFIG_PATH="$(FFI_DIST)/lib/pkgconfig"
	mkdir -p "$(FFI_BUILD)"
	step $(CC) -std=c11 -O2 -Wall -Wextra -Werror $$(pkg-config --cflags cellgate) \
		ffi-c/bench/bench_limiter.c "$(FFI_DIST)/lib/libcellgate.a" $(FFI_STATIC_LIBS) \
		-o "$(FFI_BUILD)/bench-limiter"
	bin="$(FFI_BUILD)/bench-limiter"
	step nice -n -20 python3 ffi-c/bench/compare.py time $(FFI_BENCH_LIMITER_ARGS) -- \
		"$$bin keyed keyed" "$$bin limiter limiter" "$$bin shared shared"

setup-hiredis: ## Install hiredis (Debian package libhiredis-dev) for examples/c/redis_client.c, if missing
	@$(PRELUDE)
	if ! pkg-config --exists hiredis; then
		step apt-get update -q
		step env DEBIAN_FRONTEND=noninteractive apt-get install -y -q libhiredis-dev
	fi

# examples/c/redis_client.c (cg_remote over hiredis) under ASan+UBSan against a real
# redis-server (redis-store/with-redis.sh starts it on a free loopback port and stops it
# however the command ends): 4 processes on one key admit exactly the quota, then the server
# is killed and each outage policy decides as it says, without hanging.
test-c-redis: setup-c setup-redis setup-hiredis dist-c ## C over Redis: examples/c/redis_client.c (hiredis) against a real redis-server, 4 processes exact, outage policies
	@$(PRELUDE)
	export PKG_CONFIG_PATH="$(FFI_DIST)/lib/pkgconfig"
	mkdir -p "$(FFI_BUILD)"
	step $(CC) $(FFI_CFLAGS) $(FFI_SANITIZE) $$(pkg-config --cflags cellgate hiredis) \
		examples/c/redis_client.c "$(FFI_DIST)/lib/libcellgate.a" $$(pkg-config --libs hiredis) \
		$(FFI_STATIC_LIBS) -o "$(FFI_BUILD)/redis-client-asan"
	step env ASAN_OPTIONS=detect_leaks=1 redis-store/with-redis.sh bash -c \
		'url=$${CELLGATE_REDIS_URL#redis://}; url=$${url%/}; \
		"$$0" "$${url%:*}" "$${url##*:}" check example-key 7 && \
		"$$0" "$${url%:*}" "$${url##*:}" test' "$(FFI_BUILD)/redis-client-asan"

DIST_STEPS += dist-c
TEST_STEPS += test-c test-c-redis
DEMO_STEPS += demo-c

# cellgate: developer and CI entry points. `make` (or `make help`) lists the targets.
#
# `make test` is exactly what CI runs (.ci/run). It works from a clean clone: `make setup`
# installs, idempotently, the rustup targets and components it needs. Every step prints how
# long it took, and `make test` ends with a table of those times.
#
# Overridable: CARGO_TARGET_DIR (loom and miri build under it, in loom/ and miri/, so they
# never invalidate the normal build), NIGHTLY (the toolchain for miri), LOCKED (pass
# LOCKED= to allow Cargo.lock to change), PROPTEST_CASES_MIRI, MIRI_TESTS.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
NIGHTLY ?= nightly
LOCKED ?= --locked
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
# Absolute: recipes may change directory before their exit trap writes the time.
TIMINGS_DIR := $(abspath $(TARGET_DIR))/make-timings

# Bare-metal targets: thumbv7em has compare-and-swap; thumbv6m and riscv32imc do not, so they
# build with the `critical-section` feature (the final application links an implementation).
NOSTD_CAS_TARGETS := thumbv7em-none-eabihf
NOSTD_CS_TARGETS := thumbv6m-none-eabi riscv32imc-unknown-none-elf

# Miri is slow: few proptest cases, and only the unit tests and the model test.
PROPTEST_CASES_MIRI ?= 4
MIRI_TESTS ?= --lib --test model

# The sub-targets of `make test`, `make dist` and `make demo`, in the order they run. The
# bindings and the fuzzers add theirs from their own fragments (included below).
TEST_STEPS := lint test-rust test-nostd test-loom test-miri bench-smoke
DIST_STEPS :=
DEMO_STEPS := demo-rust

# Opens every recipe (recipes run as one bash script each, see .ONESHELL): `step CMD...`
# echoes and runs CMD, and on exit the recipe reports its time, also into $(TIMINGS_DIR).
define PRELUDE
step() { printf '\n\033[1m$$ %s\033[0m\n' "$$*"; "$$@"; }
start=$$SECONDS
trap 'rc=$$?; took=$$((SECONDS - start)); status=ok; [ $$rc -eq 0 ] || status=FAILED; \
	mkdir -p "$(TIMINGS_DIR)"; printf "%s %s\n" "$$took" "$$status" > "$(TIMINGS_DIR)/$@"; \
	printf "\n==> make %s: %s in %ss\n" "$@" "$$status" "$$took"' EXIT
endef

.PHONY: help test setup setup-toolchain setup-targets setup-miri $(TEST_STEPS) \
	dist demo demo-rust bench bench-report doc fmt clean

# Each fragment holds the targets of one directory and appends to TEST_STEPS, DIST_STEPS
# and DEMO_STEPS; it may use PRELUDE, CARGO, LOCKED and TARGET_DIR from this file.
include ffi-c/ffi.mk py/py.mk node/node.mk fuzz/fuzz.mk redis-store/redis.mk \
	examples/gateway/gateway.mk tower/tower.mk host/host.mk bench/middleware/middleware.mk

help: ## Show this list of targets (the default)
	@printf 'Usage: make <target>\n\n'
	awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' \
		$(MAKEFILE_LIST)

test: $(TEST_STEPS) ## Everything CI runs: lint, tests in every feature set, no_std, loom, miri, bench smoke
	@printf '\nmake test: time per step\n'
	total=0
	for name in $(TEST_STEPS); do
		read -r took status < "$(TIMINGS_DIR)/$$name"
		printf '  %-12s %5ss  %s\n' "$$name" "$$took" "$$status"
		total=$$((total + took))
	done
	printf '  %-12s %5ss\n' total "$$total"

setup: setup-toolchain setup-targets setup-miri ## Install (idempotently) every rustup target and component the tests need

setup-toolchain: ## Install rustfmt and clippy for the default toolchain
	@$(PRELUDE)
	command -v rustup >/dev/null || { echo "rustup is required (https://rustup.rs)" >&2; exit 1; }
	step rustup component add rustfmt clippy

setup-targets: ## Install the bare-metal targets for the no_std builds
	@$(PRELUDE)
	step rustup target add $(NOSTD_CAS_TARGETS) $(NOSTD_CS_TARGETS)

setup-miri: ## Install the nightly toolchain with miri and build miri's sysroot
	@$(PRELUDE)
	rustup toolchain list | grep '^$(NIGHTLY)' >/dev/null || \
		step rustup toolchain install $(NIGHTLY) --profile minimal
	step rustup +$(NIGHTLY) component add miri rust-src
	step $(CARGO) +$(NIGHTLY) miri setup

lint: setup-toolchain ## Formatting check, clippy (all targets, all features, and no_std), rustdoc with -D warnings
	@$(PRELUDE)
	step $(CARGO) fmt --all -- --check
	step $(CARGO) clippy $(LOCKED) --workspace --all-targets --all-features -- -D warnings
	step $(CARGO) clippy $(LOCKED) -p cellgate --no-default-features --lib -- -D warnings
	step env RUSTDOCFLAGS="-D warnings" $(CARGO) doc $(LOCKED) -p cellgate --no-deps

test-rust: ## Unit, integration and doc tests: all features, no default features, alloc only; runs the demo
	@$(PRELUDE)
	# The Python and Node extension crates link against their host runtime's symbols, so
	# their Rust code is checked by clippy here and tested through their packages. The Redis
	# store's tests need a redis-server: `make test-redis` runs them. --no-fail-fast: every
	# failing test binary is reported, not only the first (a stale C header once hid the
	# host tests' failures behind the header test's).
	step $(CARGO) test $(LOCKED) --no-fail-fast --workspace --all-features --exclude cellgate-py \
		--exclude cellgate-node --exclude cellgate-redis
	step $(CARGO) test $(LOCKED) -p cellgate --no-default-features
	step $(CARGO) test $(LOCKED) -p cellgate --no-default-features --features alloc
	step $(CARGO) run $(LOCKED) -q -p cellgate --example demo > /dev/null

test-nostd: setup-targets ## Build the library for bare-metal targets (thumbv7em; thumbv6m and riscv32imc with critical-section)
	@$(PRELUDE)
	for target in $(NOSTD_CAS_TARGETS); do
		step $(CARGO) build $(LOCKED) -p cellgate --no-default-features --target "$$target"
		step $(CARGO) build $(LOCKED) -p cellgate --no-default-features --features alloc --target "$$target"
	done
	for target in $(NOSTD_CS_TARGETS); do
		step $(CARGO) build $(LOCKED) -p cellgate --no-default-features --features critical-section --target "$$target"
	done

test-loom: ## Model-check the cells, the keyed table's claim/reclaim and policies with loom (release, own target dir)
	@$(PRELUDE)
	step env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$(TARGET_DIR)/loom" \
		$(CARGO) test $(LOCKED) -p cellgate --test loom --test loom_keyed --test loom_policy --release

test-miri: setup-miri ## Run the unit tests and tests/model.rs under miri (few proptest cases, own target dir)
	@$(PRELUDE)
	step env CARGO_TARGET_DIR="$(TARGET_DIR)/miri" PROPTEST_CASES="$(PROPTEST_CASES_MIRI)" \
		MIRIFLAGS="-Zmiri-disable-isolation" \
		$(CARGO) +$(NIGHTLY) miri test $(LOCKED) -p cellgate $(MIRI_TESTS)

# `cargo test --benches` runs criterion in its test mode (each benchmark once, unmeasured), like
# `cargo bench -- --test`, but in the test profile, whose dependencies `test-rust` already built:
# seconds instead of minutes of release builds.
bench-smoke: ## Run every criterion benchmark once, unmeasured, to check that it works (and the report's own test)
	@$(PRELUDE)
	step $(CARGO) test $(LOCKED) -p cellgate-benches --benches
	step python3 benches/test_report.py

dist: $(DIST_STEPS) ## Build every distributable into dist/ (C library and header, wheel, npm tarball)

demo: $(DEMO_STEPS) ## Build everything and show it working: Rust, C, Python and Node demos (each exits by itself)

demo-rust: ## The Rust demo (core/examples/demo.rs): decisions over simulated time
	@$(PRELUDE)
	step $(CARGO) run $(LOCKED) -p cellgate --example demo --release

bench: ## Full criterion benchmark run (cellgate and its peers), then issue 15's targets against it
	@$(PRELUDE)
	step $(CARGO) bench $(LOCKED) -p cellgate-benches
	step python3 benches/report.py "$(TARGET_DIR)/criterion"

bench-report: ## The cell and keyed benchmarks with governor in the same run, then issue 15's targets: ratio and verdict each
	@$(PRELUDE)
	step $(CARGO) bench $(LOCKED) -p cellgate-benches --bench cell --bench keyed -- 'cell/|keyed/(existing|new_key)'
	step python3 benches/report.py "$(TARGET_DIR)/criterion"

doc: ## Build the API documentation (all features, -D warnings) into target/doc
	@$(PRELUDE)
	step env RUSTDOCFLAGS="-D warnings" $(CARGO) doc $(LOCKED) -p cellgate --no-deps --all-features

fmt: setup-toolchain ## Format all code in the workspace
	@$(PRELUDE)
	step $(CARGO) fmt --all

clean: ## Remove build outputs: target/ (loom, miri, venvs, node builds), dist/, fuzz/target, node_modules
	$(CARGO) clean
	rm -rf dist fuzz/target node/node_modules bench/middleware/node_modules

# Targets for fuzz/ (included by the top-level Makefile): cargo-fuzz (libFuzzer) targets for
# every input surface, with seed corpora committed under fuzz/corpus/<target>/.
#
# fuzz/ is its own workspace (its own Cargo.lock), built with the nightly toolchain, under
# $(TARGET_DIR)/fuzz. Inputs the fuzzer finds go to $(TARGET_DIR)/fuzz/corpus/<target>/ (scratch),
# never into the committed corpus; crashes go to fuzz/artifacts/<target>/ (ignored by git).
# Overridable: FUZZ_SECONDS (per target, `make fuzz`), FUZZ_SMOKE_SECONDS (per target,
# `make fuzz-smoke`), FUZZ_TARGETS, FUZZ_JOBS, CARGO_FUZZ_VERSION, NIGHTLY.

FUZZ_TARGETS ?= parse cell keyed headers ffi
# Also run under AddressSanitizer by `make fuzz` (the targets that reach `unsafe` code).
FUZZ_ASAN_TARGETS ?= ffi
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 15
CARGO_FUZZ_VERSION ?= 0.13.2
FUZZ_TOOLS := $(TARGET_DIR)/tools
CARGO_FUZZ := $(FUZZ_TOOLS)/bin/cargo-fuzz
FUZZ_OUT := $(TARGET_DIR)/fuzz
# The targets check safe Rust against models (their checks are assertions), so they build
# without a sanitizer: about ten times the executions per second of AddressSanitizer, and one
# build less in `make fuzz-smoke`. Debug assertions and overflow checks stay on (cargo-fuzz's
# default). `make fuzz` also runs FUZZ_ASAN_TARGETS (the C ABI, whose `unsafe` code reads and
# writes the callers' pointers) under AddressSanitizer, in its own target dir; ASan's allocator
# returns NULL for impossible sizes there, as malloc does, instead of aborting.
# Overridable: FUZZ_SANITIZER (none) for every run.
FUZZ_SANITIZER ?= none
# Targets fuzzed at once (one libFuzzer process each): the machine's cores.
FUZZ_JOBS ?= $(shell nproc 2>/dev/null || echo 1)

.PHONY: setup-fuzz fuzz-build fuzz fuzz-smoke

# `fuzz_run TARGET SECONDS [SANITIZER]`: replays the committed corpus, then fuzzes for SECONDS;
# built with SANITIZER (default $(FUZZ_SANITIZER)) under $(FUZZ_OUT)/SANITIZER. The libFuzzer
# log goes to $(FUZZ_OUT)/logs/TARGET-SANITIZER.log; its tail is shown on failure.
# `fuzz_all SECONDS SANITIZER -- TARGET...`: fuzz_run for each target, FUZZ_JOBS at a time
# (libFuzzer runs one process per target; the targets share nothing but the build).
define FUZZ_RUN
fuzz_run() {
	local target=$$1 seconds=$$2 sanitizer=$${3:-$(FUZZ_SANITIZER)}
	local log="$(FUZZ_OUT)/logs/$$target-$$sanitizer.log"
	local build=(--sanitizer "$$sanitizer" --target-dir "$(FUZZ_OUT)/$$sanitizer")
	mkdir -p "$(FUZZ_OUT)/corpus/$$target" "$(FUZZ_OUT)/logs"
	printf '\033[1m$$ fuzz %s (sanitizer %s): replay fuzz/corpus/%s, then %ss\033[0m\n' \
		"$$target" "$$sanitizer" "$$target" "$$seconds"
	if ! $(CARGO) +$(NIGHTLY) fuzz run "$${build[@]}" "$$target" "fuzz/corpus/$$target" \
			-- -runs=0 > "$$log" 2>&1 \
		|| ! $(CARGO) +$(NIGHTLY) fuzz run "$${build[@]}" "$$target" \
			"$(FUZZ_OUT)/corpus/$$target" "fuzz/corpus/$$target" \
			-- -max_total_time="$$seconds" -print_final_stats=1 >> "$$log" 2>&1; then
		tail -n 60 "$$log"
		echo "fuzz target $$target failed: full log in $$log, input in fuzz/artifacts/$$target/" >&2
		return 1
	fi
	printf 'fuzz %s (sanitizer %s): ok, %s inputs run\n' "$$target" "$$sanitizer" \
		"$$(sed -n 's/^stat::number_of_executed_units: *//p' "$$log" | tail -n 1)"
}
fuzz_all() {
	local seconds=$$1 sanitizer=$$2 failed=0 pids=()
	shift 3
	for target in "$$@"; do
		fuzz_run "$$target" "$$seconds" "$$sanitizer" &
		pids+=($$!)
		if (( $${#pids[@]} >= $(FUZZ_JOBS) )); then
			wait "$${pids[0]}" || failed=1
			pids=("$${pids[@]:1}")
		fi
	done
	for pid in "$${pids[@]}"; do wait "$$pid" || failed=1; done
	return $$failed
}
endef

setup-fuzz: ## Install (idempotently) the nightly toolchain and the pinned cargo-fuzz into target/tools
	@$(PRELUDE)
	rustup toolchain list | grep '^$(NIGHTLY)' >/dev/null || \
		step rustup toolchain install $(NIGHTLY) --profile minimal
	if ! "$(CARGO_FUZZ)" --version 2>/dev/null | grep -qx 'cargo-fuzz $(CARGO_FUZZ_VERSION)'; then
		step env CARGO_TARGET_DIR="$(FUZZ_TOOLS)/build" $(CARGO) install --locked \
			--version $(CARGO_FUZZ_VERSION) --root "$(FUZZ_TOOLS)" cargo-fuzz
	fi
	"$(CARGO_FUZZ)" --version

fuzz-build: setup-fuzz ## Build every fuzz target (nightly, own workspace and target dir)
	@$(PRELUDE)
	export PATH="$(abspath $(FUZZ_TOOLS))/bin:$$PATH"
	# cargo-fuzz has no --locked: fail here if fuzz/Cargo.lock is stale, before it rewrites it.
	step $(CARGO) fetch $(LOCKED) --manifest-path fuzz/Cargo.toml
	step $(CARGO) +$(NIGHTLY) fuzz build --sanitizer $(FUZZ_SANITIZER) \
		--target-dir "$(FUZZ_OUT)/$(FUZZ_SANITIZER)"

fuzz: fuzz-build ## Clippy and unit tests of fuzz/, then every target FUZZ_SECONDS (600) each, then FUZZ_ASAN_TARGETS under ASan
	@$(PRELUDE)
	export PATH="$(abspath $(FUZZ_TOOLS))/bin:$$PATH"
	step env CARGO_TARGET_DIR="$(FUZZ_OUT)/test" $(CARGO) clippy $(LOCKED) \
		--manifest-path fuzz/Cargo.toml --no-default-features --lib --bins --tests -- -D warnings
	step env CARGO_TARGET_DIR="$(FUZZ_OUT)/test" $(CARGO) test $(LOCKED) \
		--manifest-path fuzz/Cargo.toml --lib --no-default-features
	export ASAN_OPTIONS="allocator_may_return_null=1$${ASAN_OPTIONS:+:$$ASAN_OPTIONS}"
	$(FUZZ_RUN)
	fuzz_all $(FUZZ_SECONDS) $(FUZZ_SANITIZER) -- $(FUZZ_TARGETS)
	fuzz_all $(FUZZ_SECONDS) address -- $(FUZZ_ASAN_TARGETS)

fuzz-smoke: fuzz-build ## Replay each fuzz target's committed corpus, then fuzz it FUZZ_SMOKE_SECONDS (15)
	@$(PRELUDE)
	export PATH="$(abspath $(FUZZ_TOOLS))/bin:$$PATH"
	step $(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(FUZZ_RUN)
	fuzz_all $(FUZZ_SMOKE_SECONDS) $(FUZZ_SANITIZER) -- $(FUZZ_TARGETS)

TEST_STEPS += fuzz-smoke

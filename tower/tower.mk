# The tower layer (tower/, crate cellgate-tower). Its unit, integration (axum) and doc tests run
# in `test-rust`, which tests the whole workspace with all features; `test-tower` adds what that
# step does not cover: the library without axum, and the benchmark in criterion's test mode.
# `bench-tower` measures the layer against tower_governor and no layer: criterion per request,
# and wrk's requests per second over loopback (wrk from Debian's package, installed if missing).

TEST_STEPS += test-tower

.PHONY: setup-wrk test-tower bench-tower

setup-wrk: ## Install wrk and curl (Debian packages), if missing
	@$(PRELUDE)
	if ! command -v wrk >/dev/null || ! command -v curl >/dev/null; then
		step apt-get update
		step apt-get install -y wrk curl
	fi

test-tower: ## cellgate-tower without its axum feature (clippy), and its benchmark run once, unmeasured
	@$(PRELUDE)
	step $(CARGO) clippy $(LOCKED) -p cellgate-tower --no-default-features --lib -- -D warnings
	step $(CARGO) test $(LOCKED) -p cellgate-tower --benches

bench-tower: setup-wrk ## Tower layer vs tower_governor vs none: criterion per request, then wrk req/s of an axum server
	@$(PRELUDE)
	step $(CARGO) bench $(LOCKED) -p cellgate-tower --bench layer
	step $(CARGO) build $(LOCKED) --profile bench -p cellgate-tower --example bench_server
	step tower/wrk.sh "$(TARGET_DIR)/release/examples/bench_server"

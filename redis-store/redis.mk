# The Redis store (redis-store/, crate cellgate-redis): its tests need a real redis-server,
# installed here from Debian's package (idempotently) and started, on a free loopback port, by
# redis-store/with-redis.sh, which stops it again however the command ends.

TEST_STEPS += test-redis

.PHONY: setup-redis test-redis bench-redis demo-redis

setup-redis: ## Install redis-server and redis-cli (Debian package redis-server), if missing
	@$(PRELUDE)
	if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
		step apt-get update
		step apt-get install -y redis-server
	fi

test-redis: setup-redis ## The Redis store's tests against a real redis-server (vectors, differential, outage, Cluster)
	@$(PRELUDE)
	step redis-store/with-redis.sh $(CARGO) test $(LOCKED) -p cellgate-redis --all-features

bench-redis: setup-redis ## Decisions per second and latency against a local redis-server (1 and 8 clients)
	@$(PRELUDE)
	step redis-store/with-redis.sh $(CARGO) run $(LOCKED) --release -p cellgate-redis --all-features \
		--example bench

demo-redis: setup-redis build-node demo-py-venv ## Express and FastAPI instances on two ports sharing one per-client limit over Redis: 429s at whichever is asked
	@$(PRELUDE)
	step redis-store/with-redis.sh env CELLGATE_DEMO_PYTHON="$(PY_DEMO_VENV)/bin/python" $(NODE) node/demo/redis.js

DEMO_STEPS += demo-redis

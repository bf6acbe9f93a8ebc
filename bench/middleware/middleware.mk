# Targets for bench/middleware/ (requests per second of real servers over loopback, with no
# limiter, cellgate's middleware and the peer's; see bench/middleware/README.md), included by
# the top-level Makefile after py/py.mk and node/node.mk, whose wheel, venv and addon recipes
# they reuse.
#
#   make bench-middleware        every framework, 2 interleaved runs of 10 s per variant
#   make test-middleware-bench   smoke: each of the 15 apps checked (status, headers) and
#                                loaded for 1 s, so that the harness keeps working
#
# Overridable: MIDDLEWARE_BENCH_ARGS (driver arguments, e.g. --duration 30 --frameworks flask).

MIDDLEWARE_BENCH_DIR := bench/middleware
MIDDLEWARE_BENCH_VENV := $(TARGET_DIR)/middleware-bench
MIDDLEWARE_BENCH_ARGS ?=

# wrk (Debian's, installed when missing), the Node apps' pinned dependencies (npm ci, when the
# lock file changed), the release wheel (py.mk's recipe) in a venv with the Python apps'
# pinned dependencies. The addon comes from the build-node prerequisite.
define MIDDLEWARE_BENCH_DEPS
if ! command -v wrk >/dev/null; then
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then
		step apt-get update -q
		step env DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
	else
		echo "wrk is required (Debian/Ubuntu: apt-get install wrk)" >&2
		exit 1
	fi
fi
if [ ! -f $(MIDDLEWARE_BENCH_DIR)/node_modules/.package-lock.json ] || \
	[ $(MIDDLEWARE_BENCH_DIR)/package-lock.json -nt $(MIDDLEWARE_BENCH_DIR)/node_modules/.package-lock.json ]; then
	step $(NPM) ci --prefix $(MIDDLEWARE_BENCH_DIR) --no-audit --no-fund
fi
$(PY_TOOLS_VENV)
$(call PY_BUILD_WHEEL,$(PY_WHEELS))
$(call PY_KEPT_VENV,$(MIDDLEWARE_BENCH_VENV),$(MIDDLEWARE_BENCH_DIR)/requirements.txt)
step "$(MIDDLEWARE_BENCH_VENV)/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
	"$(PY_WHEELS)"/cellgate-*.whl
endef

.PHONY: bench-middleware test-middleware-bench

bench-middleware: build-node ## Middleware req/s over loopback (wrk): no limiter vs cellgate vs the peer, in Express, Fastify, Starlette, Flask, Django
	@$(PRELUDE)
	$(MIDDLEWARE_BENCH_DEPS)
	step "$(MIDDLEWARE_BENCH_VENV)/bin/python" $(MIDDLEWARE_BENCH_DIR)/run.py --node $(NODE) \
		--cellgate-node-dir node $(MIDDLEWARE_BENCH_ARGS)

test-middleware-bench: build-node ## Smoke of bench-middleware: each of the 15 apps answers with its headers and takes 1 s of wrk
	@$(PRELUDE)
	$(MIDDLEWARE_BENCH_DEPS)
	step "$(MIDDLEWARE_BENCH_VENV)/bin/python" $(MIDDLEWARE_BENCH_DIR)/run.py --node $(NODE) \
		--cellgate-node-dir node --smoke $(MIDDLEWARE_BENCH_ARGS)

TEST_STEPS += test-middleware-bench

# Targets for py/ (the Python package `cellgate`: the pyo3 extension `cellgate._cellgate`, abi3
# for CPython 3.10+, under a thin pure-Python package), included by the top-level Makefile.
#
#   make dist-py    dist/cellgate-<version>-cp310-abi3-<platform>.whl (maturin, release)
#   make test-py    builds that wheel, installs it into a fresh venv with the pinned test
#                   dependencies (py/requirements-test.txt) and runs pytest and stubtest there
#   make demo-py    a FastAPI app under uvicorn on 127.0.0.1 answering 200s, then 429s; then
#                   uvicorn --workers 4 sharing one host-wide limit in shared memory
#   make bench-py   Limiter.check against `limits` and `pyrate-limiter`, same run
#
# Overridable: PYTHON (the interpreter the venvs are made from), PY_TEST_ARGS (extra pytest
# arguments), PY_BENCH_ARGS (bench script arguments, e.g. --calls 100000).

PYTHON ?= python3
PY_MATURIN_VERSION := 1.16.0
PY_TOOLS := $(TARGET_DIR)/py-tools
PY_WHEELS := $(TARGET_DIR)/py-wheels
PY_TEST_VENV := $(TARGET_DIR)/py-test
PY_DEMO_VENV := $(TARGET_DIR)/py-demo
PY_BENCH_VENV := $(TARGET_DIR)/py-bench
PY_TEST_ARGS ?=
PY_BENCH_ARGS ?=

# Shell snippets shared by the recipes below (they run after PRELUDE, which defines `step`).
# The tools venv (maturin), created once and kept while it holds the pinned maturin.
define PY_TOOLS_VENV
if ! "$(PY_TOOLS)/bin/maturin" --version 2>/dev/null | grep -qx 'maturin $(PY_MATURIN_VERSION)'; then
	step rm -rf "$(PY_TOOLS)"
	step $(PYTHON) -m venv "$(PY_TOOLS)"
	step "$(PY_TOOLS)/bin/python" -m pip install -q --disable-pip-version-check "maturin==$(PY_MATURIN_VERSION)"
fi
endef

# Builds the release abi3 wheel into $(1) (emptied first, so exactly one wheel is there).
define PY_BUILD_WHEEL
step rm -rf "$(1)"
step env CARGO_TARGET_DIR="$(abspath $(TARGET_DIR))" "$(PY_TOOLS)/bin/maturin" build --release $(LOCKED) \
	-m py/Cargo.toml --out "$(1)"
endef

# A venv at $(1) with the requirements file $(2) installed, kept while that file is unchanged.
define PY_KEPT_VENV
if ! cmp -s "$(2)" "$(1)/requirements.txt"; then
	step rm -rf "$(1)"
	step $(PYTHON) -m venv "$(1)"
	step "$(1)/bin/python" -m pip install -q --disable-pip-version-check -r "$(2)"
	cp "$(2)" "$(1)/requirements.txt"
fi
endef

.PHONY: dist-py test-py demo-py-venv demo-py bench-py bench-py-redis

dist-py: ## Build the release abi3 wheel (CPython 3.10+) into dist/ with maturin
	@$(PRELUDE)
	$(PY_TOOLS_VENV)
	$(call PY_BUILD_WHEEL,$(PY_WHEELS))
	mkdir -p dist
	step cp "$(PY_WHEELS)"/cellgate-*.whl dist/

test-py: setup-redis ## Python: build the wheel, install it into a fresh venv with the test deps, run pytest (against a real redis-server for cellgate.redis) and stubtest there
	@$(PRELUDE)
	$(PY_TOOLS_VENV)
	$(call PY_BUILD_WHEEL,$(PY_WHEELS))
	step rm -rf "$(PY_TEST_VENV)"
	step $(PYTHON) -m venv "$(PY_TEST_VENV)"
	step "$(PY_TEST_VENV)/bin/python" -m pip install -q --disable-pip-version-check \
		-r py/requirements-test.txt "$(PY_WHEELS)"/cellgate-*.whl
	# From an empty directory outside the source tree, so that `import cellgate` (and mypy)
	# can only find the installed wheel.
	mkdir -p "$(PY_TEST_VENV)/run"
	cd "$(PY_TEST_VENV)/run"
	# redis-store/with-redis.sh starts a redis-server on a free loopback port for
	# py/tests/test_redis.py (CELLGATE_REDIS_URL) and stops it however pytest ends.
	step "$(CURDIR)/redis-store/with-redis.sh" env CELLGATE_VECTORS="$(CURDIR)/testdata/vectors" CELLGATE_HEADERS="$(CURDIR)/testdata/headers" \
		CELLGATE_BENCH_SCRIPT="$(CURDIR)/py/bench/bench.py" \
		../bin/python -m pytest -p no:cacheprovider --import-mode=importlib -q "$(CURDIR)/py/tests" $(PY_TEST_ARGS)
	step ../bin/python -m mypy.stubtest --mypy-config-file "$(CURDIR)/py/pyproject.toml" \
		--allowlist "$(CURDIR)/py/stubtest-allowlist.txt" cellgate

demo-py-venv: ## The demos' venv (target/py-demo): the wheel, fastapi, uvicorn and redis-py
	@$(PRELUDE)
	$(PY_TOOLS_VENV)
	$(call PY_BUILD_WHEEL,$(PY_WHEELS))
	$(call PY_KEPT_VENV,$(PY_DEMO_VENV),py/requirements-demo.txt)
	step "$(PY_DEMO_VENV)/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
		"$(PY_WHEELS)"/cellgate-*.whl

demo-py: demo-py-venv ## Python: FastAPI under uvicorn on 127.0.0.1, 200s turning into 429s; then uvicorn --workers 4 with one host-wide limit
	@$(PRELUDE)
	step bash py/demo/run.sh "$(PY_DEMO_VENV)/bin/python"

bench-py: ## Python: Limiter.check vs limits (moving window) and pyrate-limiter over 1000 keys, plus allocations
	@$(PRELUDE)
	$(PY_TOOLS_VENV)
	$(call PY_BUILD_WHEEL,$(PY_WHEELS))
	$(call PY_KEPT_VENV,$(PY_BENCH_VENV),py/requirements-bench.txt)
	step "$(PY_BENCH_VENV)/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
		"$(PY_WHEELS)"/cellgate-*.whl
	mkdir -p "$(PY_BENCH_VENV)/run"
	cd "$(PY_BENCH_VENV)/run"
	step ../bin/python "$(CURDIR)/py/bench/bench.py" $(PY_BENCH_ARGS)

bench-py-redis: setup-redis ## Python: cellgate.redis vs limits' Redis storage (moving and sliding window), 1 and 8 threads, one local redis-server
	@$(PRELUDE)
	$(PY_TOOLS_VENV)
	$(call PY_BUILD_WHEEL,$(PY_WHEELS))
	$(call PY_KEPT_VENV,$(PY_BENCH_VENV),py/requirements-bench.txt)
	step "$(PY_BENCH_VENV)/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
		"$(PY_WHEELS)"/cellgate-*.whl
	step redis-store/with-redis.sh "$(PY_BENCH_VENV)/bin/python" py/bench/redis_bench.py $(PY_BENCH_ARGS)

TEST_STEPS += test-py
DIST_STEPS += dist-py
DEMO_STEPS += demo-py

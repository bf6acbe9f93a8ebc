# Targets for node/ (the npm package `cellgate`: a napi-rs 3 addon under a thin JS layer),
# included by the top-level Makefile.
#
#   make dist-node    dist/cellgate-<version>.tgz (npm pack of the release addon and lib/)
#   make test-node    installs that tarball into a fresh temporary project with express,
#                     fastify and the peers, and runs node/test there with `node --test`
#   make demo-node    an Express app on 127.0.0.1 answering 200s, then 429s
#   make bench-node   check(key) against rate-limiter-flexible and express-rate-limit
#   make test-node-redis   node/test/redis*.test.js against a real redis-server (with-redis.sh)
#   make bench-node-redis  RedisLimiter vs rate-limiter-flexible's RateLimiterRedis, same server
#   make bench-redis-script  Redis's own time per EVALSHA of the script (1 and 3 quotas)
#
# Overridable: NODE, NPM, NODE_TEST_ARGS (extra `node --test` arguments), NODE_BENCH_ARGS.

NODE ?= node
NPM ?= npm
NODE_DIST := $(CURDIR)/dist
# The addon builds in its own cargo target dir under TARGET_DIR (absolute: napi runs in node/).
NODE_CARGO_TARGET := $(abspath $(TARGET_DIR))/node
NODE_VECTORS := $(CURDIR)/testdata/vectors
NODE_HEADER_VECTORS := $(CURDIR)/testdata/headers/headers.json
NODE_TEST_ARGS ?=
NODE_BENCH_ARGS ?=

.PHONY: setup-node deps-node build-node dist-node test-node test-node-redis demo-node bench-node bench-node-redis bench-redis-script

setup-node: ## Check (and on Debian/Ubuntu as root, install) node >= 18.17 and npm
	@$(PRELUDE)
	if ! command -v $(NODE) >/dev/null || ! command -v $(NPM) >/dev/null; then
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then
			step apt-get update -q
			step env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
		else
			echo "node and npm are required (node >= 18.17)" >&2
			exit 1
		fi
	fi
	step $(NODE) -e 'const [a, b] = process.versions.node.split(".").map(Number); if (a < 18 || (a === 18 && b < 17)) { console.error("node >= 18.17 is required, found " + process.version); process.exit(1); }'

# package.json pins, in "overrides", three dependencies of @napi-rs/cli (lzma, tar, wasm-tools,
# which it needs only for cross-compiling) to versions whose every platform package the npm
# registry serves here: with their newest versions some optional platform packages could not be
# resolved, package-lock.json lacked them, and `npm ci` refused the lock file.
deps-node: setup-node ## Install node/'s dev dependencies (@napi-rs/cli, peers) from package-lock.json (npm ci), if changed
	@$(PRELUDE)
	cd node
	# npm ci only when the lock file is newer than the last install (it deletes node_modules).
	if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
		step $(NPM) ci --no-audit --no-fund
	fi

build-node: deps-node ## Build the release addon into node/native/cellgate.node (napi build; cargo --locked)
	@$(PRELUDE)
	cd node
	step npx --no-install napi build --release --output-dir native --target-dir "$(NODE_CARGO_TARGET)" -- $(LOCKED)

dist-node: build-node ## npm pack the package into dist/cellgate-<version>.tgz
	@$(PRELUDE)
	mkdir -p "$(NODE_DIST)"
	cd node
	step $(NPM) pack --pack-destination "$(NODE_DIST)"

# The recipe of test-node and test-node-redis: installs the tarball and the test dependencies
# into a fresh temporary project, and runs `$(1) node --test $(2)` there ($(1): a command
# prefix, such as redis-store/with-redis.sh; $(2): the test files).
define node_test_project
version=$$($(NODE) -p 'require("./node/package.json").version')
tarball="$(NODE_DIST)/cellgate-$$version.tgz"
# The test dependencies at the versions node/package.json pins (everything but the napi CLI).
deps=$$($(NODE) -p 'const d = require("./node/package.json").devDependencies; Object.keys(d).filter((n) => n !== "@napi-rs/cli").map((n) => n + "@" + d[n]).join(" ")')
project=$$(mktemp -d "$${TMPDIR:-/tmp}/cellgate-node-test.XXXXXX")
printf '{ "name": "cellgate-node-test", "private": true, "version": "0.0.0" }\n' > "$$project/package.json"
cp -R node/test node/bench "$$project/"
# The project is removed whatever happens (not with a trap: PRELUDE's EXIT trap records
# the step's time).
rc=0
(
	# `&&`: errexit does not apply inside a subshell on the left of `||`.
	cd "$$project" &&
	step $(NPM) install --no-audit --no-fund --no-package-lock "$$tarball" $$deps &&
	step $(1) env CELLGATE_VECTORS="$(NODE_VECTORS)" CELLGATE_HEADER_VECTORS="$(NODE_HEADER_VECTORS)" CELLGATE_README="$(CURDIR)/README.md" $(NODE) --test $(NODE_TEST_ARGS) $(2)
) || rc=$$?
rm -rf "$$project"
exit $$rc
endef

test-node: dist-node ## Install the tarball into a fresh project and run node/test there (real servers on 127.0.0.1; the Redis tests skip without CELLGATE_REDIS_URL)
	@$(PRELUDE)
	# napi build regenerated node/native/index.d.ts (the addon's own types): it must be the
	# committed one, as the C header is.
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		step git diff --exit-code -- node/native/index.d.ts
	fi
	$(call node_test_project,,test/)

# The same tarball (dist-node, built once per make run) against a real redis-server, started
# on a free loopback port by redis-store/with-redis.sh and stopped however the tests end.
test-node-redis: setup-redis dist-node ## node/test/redis*.test.js against a real redis-server (vectors, differential, 4 processes, SCRIPT FLUSH, outage and restart, Express/Fastify; ioredis and node-redis)
	@$(PRELUDE)
	$(call node_test_project,"$(CURDIR)/redis-store/with-redis.sh",test/redis*.test.js)

demo-node: build-node ## An Express app on 127.0.0.1 (a free port): 200s turning into 429s; then a cluster of 4 workers holding one host-wide limit
	@$(PRELUDE)
	step $(NODE) node/demo/express.js
	step $(NODE) node/demo/cluster.js

# The boundary probes (node/src/boundary.rs) are not in the package's addon: a second addon
# built with the `bench-probes` feature, outside node/ (its generated types too), carries them.
NODE_BENCH_ADDON_DIR := $(NODE_CARGO_TARGET)/bench-addon

bench-node: build-node ## check(key) vs rate-limiter-flexible and express-rate-limit, plus the Node-API boundary costs
	@$(PRELUDE)
	cd node
	step npx --no-install napi build --release --features bench-probes --output-dir "$(NODE_BENCH_ADDON_DIR)" --target-dir "$(NODE_CARGO_TARGET)" -- $(LOCKED)
	step env CELLGATE_BENCH_ADDON="$(NODE_BENCH_ADDON_DIR)/cellgate.node" $(NODE) bench/check.js $(NODE_BENCH_ARGS)

# Two Express instances (two processes) sharing one limit through a redis-server that
# redis-store/with-redis.sh starts and stops.
bench-redis-script: setup-redis build-node ## Redis's own time per EVALSHA of cellgate's script (INFO commandstats), 1 and 3 quotas
	@$(PRELUDE)
	cd node
	step ../redis-store/with-redis.sh $(NODE) bench/redis-script.js

bench-node-redis: setup-redis build-node ## RedisLimiter (ioredis, node-redis) vs rate-limiter-flexible RateLimiterRedis: decisions/s and latency, 1 and 8 in flight
	@$(PRELUDE)
	cd node
	step ../redis-store/with-redis.sh $(NODE) bench/redis.js $(NODE_BENCH_ARGS)

DIST_STEPS += dist-node
DEMO_STEPS += demo-node
TEST_STEPS += test-node
TEST_STEPS += test-node-redis

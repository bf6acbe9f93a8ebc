# Targets for examples/gateway/ (two LLM gateways, FastAPI and Express, in front of one fake
# model server), included by the top-level Makefile.
#
#   make test-gateway   the end-to-end tests of both gateways: pytest in a venv made from
#                       examples/gateway/python/requirements.txt, and node --test
#   make demo-gateway   a few requests through each gateway: headers, a 429, then it exits
#
# Neither builds a binding of its own: the Python side installs the wheel py.mk builds
# (PY_TOOLS_VENV and PY_BUILD_WHEEL into PY_WHEELS, in the same cargo target dir, so after
# test-py only maturin's packaging runs again), the Node side unpacks the npm tarball of
# node.mk's dist-node (a prerequisite, so it is built once per make run, with test-node's).
#
# Overridable: GATEWAY_TEST_ARGS (extra pytest arguments), GATEWAY_NODE_TEST_ARGS.

GATEWAY_DIR := examples/gateway
GATEWAY_PY_VENV := $(TARGET_DIR)/gateway-py
# express and structured-headers, at the versions examples/gateway/node/package.json pins,
# plus the cellgate tarball; the example finds them through NODE_PATH.
GATEWAY_NODE_DEPS := $(abspath $(TARGET_DIR))/gateway-node
GATEWAY_TEST_ARGS ?=
GATEWAY_NODE_TEST_ARGS ?=

# The venv with the example's pinned requirements (kept while that file is unchanged) and the
# wheel just built.
define GATEWAY_PY_SETUP
$(PY_TOOLS_VENV)
$(call PY_BUILD_WHEEL,$(PY_WHEELS))
$(call PY_KEPT_VENV,$(GATEWAY_PY_VENV),$(GATEWAY_DIR)/python/requirements.txt)
step "$(GATEWAY_PY_VENV)/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
	"$(PY_WHEELS)"/cellgate-*.whl
endef

# The example's npm dependencies (kept while its package.json is unchanged), then the cellgate
# tarball unpacked in place of `npm install` (the package has no dependencies).
define GATEWAY_NODE_SETUP
if ! cmp -s "$(GATEWAY_DIR)/node/package.json" "$(GATEWAY_NODE_DEPS)/example-package.json"; then
	step rm -rf "$(GATEWAY_NODE_DEPS)"
	mkdir -p "$(GATEWAY_NODE_DEPS)"
	printf '{ "name": "cellgate-gateway-deps", "private": true, "version": "0.0.0" }\n' > "$(GATEWAY_NODE_DEPS)/package.json"
	deps=$$($(NODE) -p 'const p = require("./$(GATEWAY_DIR)/node/package.json"); const d = { ...p.dependencies, ...p.devDependencies }; Object.keys(d).filter((n) => n !== "cellgate").map((n) => n + "@" + d[n]).join(" ")')
	(cd "$(GATEWAY_NODE_DEPS)" && step $(NPM) install --no-audit --no-fund --no-package-lock $$deps)
	cp "$(GATEWAY_DIR)/node/package.json" "$(GATEWAY_NODE_DEPS)/example-package.json"
fi
version=$$($(NODE) -p 'require("./node/package.json").version')
rm -rf "$(GATEWAY_NODE_DEPS)/node_modules/cellgate"
mkdir -p "$(GATEWAY_NODE_DEPS)/node_modules/cellgate"
step tar -xzf "$(NODE_DIST)/cellgate-$$version.tgz" -C "$(GATEWAY_NODE_DEPS)/node_modules/cellgate" --strip-components=1
endef

.PHONY: test-gateway demo-gateway

test-gateway: dist-node ## The LLM gateway examples (FastAPI, Express) end to end over loopback: pytest and node --test
	@$(PRELUDE)
	$(GATEWAY_PY_SETUP)
	$(GATEWAY_NODE_SETUP)
	step "$(GATEWAY_PY_VENV)/bin/python" -m pytest -p no:cacheprovider -q "$(GATEWAY_DIR)/python" $(GATEWAY_TEST_ARGS)
	step env NODE_PATH="$(GATEWAY_NODE_DEPS)/node_modules" PYTHON="$(PYTHON)" \
		$(NODE) --test $(GATEWAY_NODE_TEST_ARGS) "$(GATEWAY_DIR)/node/"

demo-gateway: dist-node ## The LLM gateways: a few requests through each (headers, a stream, a refund, a 429), then exit
	@$(PRELUDE)
	$(GATEWAY_PY_SETUP)
	$(GATEWAY_NODE_SETUP)
	step env NODE_PATH="$(GATEWAY_NODE_DEPS)/node_modules" NODE="$(NODE)" \
		timeout 60 "$(GATEWAY_PY_VENV)/bin/python" "$(GATEWAY_DIR)/demo.py"

TEST_STEPS += test-gateway
DEMO_STEPS += demo-gateway

# The host-wide tier across runtimes (host/cross-runtime/): C, Python and Node processes share
# one table file at once and together admit exactly the quota. Included by the top-level
# Makefile; reuses py.mk's wheel, node.mk's tarball and ffi.mk's dist-c.

TEST_STEPS += test-cross-runtime

CROSS_DIR := $(TARGET_DIR)/cross-runtime

.PHONY: test-cross-runtime

test-cross-runtime: dist-c dist-node ## C, Python and Node processes on one shared table admit exactly the quota together
	@$(PRELUDE)
	$(PY_TOOLS_VENV)
	$(call PY_BUILD_WHEEL,$(PY_WHEELS))
	mkdir -p "$(CROSS_DIR)"
	if [ ! -x "$(CROSS_DIR)/py/bin/python" ]; then step $(PYTHON) -m venv "$(CROSS_DIR)/py"; fi
	step "$(CROSS_DIR)/py/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall \
		--no-deps "$(PY_WHEELS)"/cellgate-*.whl
	version=$$($(NODE) -p 'require("./node/package.json").version')
	rm -rf "$(CROSS_DIR)/node" && mkdir -p "$(CROSS_DIR)/node"
	printf '{ "name": "cellgate-cross", "private": true, "version": "0.0.0" }\n' > "$(CROSS_DIR)/node/package.json"
	(cd "$(CROSS_DIR)/node" && step $(NPM) install --no-audit --no-fund --no-package-lock \
		"$(abspath $(NODE_DIST))/cellgate-$$version.tgz")
	step $(CC) -std=c11 -Wall -Wextra -Werror -O1 -Idist/include host/cross-runtime/worker.c \
		dist/lib/libcellgate.a -lpthread -ldl -lm -o "$(CROSS_DIR)/worker"
	step $(PYTHON) host/cross-runtime/driver.py --python "$(CROSS_DIR)/py/bin/python" --node $(NODE) \
		--node-path "$(CROSS_DIR)/node/node_modules" --c-worker "$(CROSS_DIR)/worker"

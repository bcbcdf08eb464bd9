# Janitor services suite. `make run` brings up the whole suite locally,
# `make test` runs lint and every test. Both install what they need first.

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
# pip warns about every local index directory that lacks a package; keep the real messages.
PIPFILTER := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
VENV := .venv
VPY := $(VENV)/bin/python
PACKAGES := libs/janitor-common libs/janitor-dev services/bzr-store services/differ services/auto-upload
SRC_DIRS := libs/janitor-common/src libs/janitor-dev/src services/bzr-store/src services/differ/src services/auto-upload/src
# Only directories that exist: a fresh clone has no empty ones.
TEST_DIRS := $(wildcard libs/janitor-common/tests services/bzr-store/tests services/differ/tests services/auto-upload/tests tests/deploy tests/integration tests/compat)
LINT_DIRS := $(SRC_DIRS) $(TEST_DIRS) $(wildcard bench scripts/*.py)

.PHONY: all help system-deps install lock run test unit lint format bench clean k8s-check wheels compose-test fuzz proto

all: install

help:
	@echo "make run          install everything and start PostgreSQL, Redis and the three services"
	@echo "make test         lint + every test (starts its own PostgreSQL and Redis)"
	@echo "make lint         ruff and mypy"
	@echo "make install      create .venv with the four packages installed editable"
	@echo "make system-deps  install the Debian packages the suite needs (root or sudo)"
	@echo "make lock         recompile requirements/constraints.txt (needs network access to the index)"
	@echo "make bench        run the benchmarks under bench/"
	@echo "make fuzz         requests generated from every OpenAPI document, 200 per operation and mode"
	@echo "make k8s-check    render deploy/k8s (base, overlays) and validate it offline"
	@echo "make wheels       build wheels of the services and their dependencies into build/wheels"
	@echo "make proto        rebuild janitor-common's janitor_conf.desc from janitor_conf.proto (needs protoc)"
	@echo "make compose-test build the images, start deploy/compose.yaml for real, check it, tear it down"

system-deps:
	@bash scripts/system-deps.sh

# The venv is rebuilt when the constraints or any pyproject change.
$(VENV)/.installed: requirements/constraints.txt $(addsuffix /pyproject.toml,$(PACKAGES))
	@test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@# --no-compile: byte-compiling every installed file took 48 of 119 s on a 2-core machine;
	@# Python compiles what is imported, when it is first imported.
	$(VPY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps --no-compile -r requirements/constraints.txt $(PIPFILTER)
	$(VPY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES)) $(PIPFILTER)
	@touch $@

install: $(VENV)/.installed

lock:
	uv pip compile requirements/dev.in --python-version 3.11 --universal --generate-hashes --quiet -o requirements/constraints.in.txt
	grep -v '^-e ' requirements/constraints.in.txt > requirements/constraints.txt
	rm requirements/constraints.in.txt

# .pyc files are written to .venv as modules are first imported (make install
# does not compile them all), even where PYTHONDONTWRITEBYTECODE is set in the
# environment: without them every restart compiles Breezy and the rest again.
run: system-deps install
	PYTHONDONTWRITEBYTECODE= $(VPY) -m janitor_dev.devrun

CONF_PROTO_DIR = libs/janitor-common/src/janitor_common
proto:
	protoc --proto_path=$(CONF_PROTO_DIR) --descriptor_set_out=$(CONF_PROTO_DIR)/janitor_conf.desc janitor_conf.proto

lint: install
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy $(SRC_DIRS)
	@# Each test directory on its own, rooted at its package, so their conftest modules do not clash.
	@set -e; for d in $(TEST_DIRS) bench; do \
	  root=$$(dirname $$d); [ $$d = bench ] && root=bench; [ $${d#tests/} != $$d ] && root=.; \
	  echo "MYPYPATH=$$root mypy $$d"; MYPYPATH=$$root $(VENV)/bin/mypy $$d; done

format: install
	$(VENV)/bin/ruff format $(LINT_DIRS)
	$(VENV)/bin/ruff check --fix $(LINT_DIRS)

# Coverage of the runtime packages, the service processes the tests start
# included ([tool.coverage] in pyproject.toml); the table lists files not
# fully covered, worst first, and the total.
# PYTHONDONTWRITEBYTECODE emptied as for make run: the tests start hundreds of
# Python processes (services, brz), and without .pyc files each compiles
# Breezy and the rest again (the suite took 16 min instead of 11 on a
# fresh clone where the environment set it).
COVERAGE := PYTHONDONTWRITEBYTECODE= COVERAGE_FILE=$(CURDIR)/.coverage $(VPY) -m coverage
unit: system-deps install
	rm -f .coverage .coverage.*
	$(COVERAGE) run -m pytest $(TEST_DIRS)
	@$(COVERAGE) combine -q
	@$(COVERAGE) report

test: system-deps install lint k8s-check unit

# make test runs the same with 25 examples per operation and mode.
fuzz: system-deps install
	JANITOR_FUZZ_EXAMPLES=200 $(VPY) -m pytest -q tests/integration/test_fuzz.py

k8s-check: install
	$(VPY) scripts/k8s_check.py

wheels: install
	$(VPY) scripts/wheels.py $(PIPFILTER)

compose-test: install wheels
	@bash scripts/system-deps.sh compose
	$(VPY) scripts/compose_test.py

bench: system-deps install
	@for b in $(wildcard bench/*.py); do echo "== $$b"; $(VPY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*

# Every target creates the virtualenv on first use, so a fresh clone needs only
# Python 3.11, make, and the RabbitMQ and Redis server packages (see README): make run
# and make test start private servers of their own and stop them afterwards.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Static-check tools (checkov, hadolint, actionlint) live apart: checkov's pins clash
# with the project's. tests/static finds them through RNR_TOOLS_BIN.
TOOLS_VENV  := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
export RNR_TOOLS_BIN := $(abspath $(TOOLS_VENV)/bin)
# The AsyncAPI project's parser, which tests/unit/test_asyncapi.py checks docs/asyncapi.yaml
# with: pinned by tools/asyncapi/package-lock.json, installed by npm ci (Node 20 or later).
ASYNCAPI_TOOLS := tools/asyncapi
ASYNCAPI_STAMP := $(ASYNCAPI_TOOLS)/node_modules/.installed

# The shared conformance cases, where this checkout has them beside it (tests skip otherwise).
RNR_SHARED_DIR ?= $(abspath $(wildcard ../shared))
export RNR_SHARED_DIR

.PHONY: venv tools run run-forever test test-unit static lint format bench bench-national up down fixtures clean asyncapi

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@echo "Creating $(VENV) and installing the pinned dependencies (once; about a minute)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --progress-bar on -c constraints.txt -e '.[dev]'
	touch $(STAMP)

tools: $(TOOLS_STAMP) $(ASYNCAPI_STAMP)

$(TOOLS_STAMP): deploy/requirements-tools.txt
	@echo "Creating $(TOOLS_VENV) with the static-check tools (once)"
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --upgrade pip==25.3
	$(TOOLS_VENV)/bin/pip install --quiet -r deploy/requirements-tools.txt
	touch $(TOOLS_STAMP)

# --ignore-scripts: the parser is plain JavaScript; no package's install script runs.
$(ASYNCAPI_STAMP): $(ASYNCAPI_TOOLS)/package.json $(ASYNCAPI_TOOLS)/package-lock.json
	@echo "Installing the pinned AsyncAPI parser into $(ASYNCAPI_TOOLS)/node_modules (npm ci, once)"
	cd $(ASYNCAPI_TOOLS) && npm ci --ignore-scripts --no-audit --no-fund
	touch $(ASYNCAPI_STAMP)

# KEEP=1 copies the emulator's output bucket to .local-run/outputs/ before it stops.
RUN_FLAGS := $(if $(filter-out 0 no false,$(KEEP)),--keep)
PROMETHEUS_FLAGS := $(if $(filter-out 0 no false,$(PROMETHEUS)),--prometheus)

## run: the whole pipeline without Docker, once, with a summary per stage. Starts its own
## RabbitMQ and Redis unless RABBITMQ_URL / REDIS_URL point at running ones
run: $(STAMP)
	$(BIN)/python -m devstack.local.run $(RUN_FLAGS)

## run-forever: the same, kept running on its schedules until Ctrl-C; PROMETHEUS=1 also
## runs this machine's Prometheus (Debian's prometheus package) scraping every service
run-forever: $(STAMP)
	$(BIN)/python -m devstack.local.run --keep-running $(RUN_FLAGS) $(PROMETHEUS_FLAGS)

## test: lint, then every test (unit, static, integration, e2e); starts its own RabbitMQ
## and Redis unless TEST_RABBITMQ_URL / TEST_REDIS_URL point at running ones
test: lint tools
	$(BIN)/python -m pytest

## static: the deployment checks alone (Terraform, Dockerfile, workflows)
static: $(STAMP) tools
	$(BIN)/python -m pytest -m static

test-unit: $(STAMP)
	$(BIN)/python -m pytest -m unit

## lint: ruff, the layer contracts (import-linter) and the types (mypy)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/gauge_path.py
	$(BIN)/python bench/postproc.py
	$(BIN)/python bench/autoscale_sim.py

## bench-national: the worker on a 3,000,000-flowpath synthetic hydrofabric (generated once
## into bench/out/, several minutes): index artifact build, start to /readyz, memory
bench-national: $(STAMP)
	$(BIN)/python bench/national_scale.py

## asyncapi: regenerate docs/asyncapi.yaml (the message contract) from rnr/messaging; a unit
## test fails while the committed file differs
asyncapi: $(STAMP)
	$(BIN)/python -m rnr.messaging.asyncapi

fixtures: $(STAMP)
	$(BIN)/python -m devstack.replay.make_fixtures

## up / down: the same stack under Docker Compose (needs a Docker engine)
up:
	docker compose up --build

down:
	docker compose down -v

clean:
	rm -rf $(VENV) $(TOOLS_VENV) $(ASYNCAPI_TOOLS)/node_modules .pytest_cache .ruff_cache

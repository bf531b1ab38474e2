# Gatehouse: `make run` starts the bot, `make test` runs every check. Needs Python 3.11 and make.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The runtime dependencies only (make run, make migrate), and those plus the dev tools (make
# test and the rest). Installing the dev tools marks the runtime as installed too.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed

.PHONY: install run test lint fmt typecheck layers policy-test pytest migrate demo clean lock image docs

.DEFAULT_GOAL := install
# Named on the command line when the default Python is missing or too old.
OTHER_PYTHON = PYTHON=python3.12 make $(or $(MAKECMDGOALS),$(.DEFAULT_GOAL))

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "$(PYTHON) was not found on PATH ($$PATH)."; \
	  echo "Install Python 3.11, or name another Python 3.11 or newer: $(OTHER_PYTHON)"; \
	  exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "$(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); Gatehouse needs 3.11 or newer: $(OTHER_PYTHON)"; \
	  exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

# The virtualenv with the dev tools, for the `gatehouse` command: .venv/bin/gatehouse.
install: $(STAMP)

# Re-pin requirements.lock to the runtime closure installed in .venv (after changing dependencies).
lock: $(STAMP)
	$(BIN)/python -m tests.unit.deploy.test_requirements_lock > requirements.lock.new
	mv requirements.lock.new requirements.lock

# Regenerate docs/configuration.md from bot/config.py and docs/messages.md (every message and
# view, drawn by the renderers) from tests/tools/gallery.py; a test fails while either is stale.
docs: $(STAMP)
	$(BIN)/gatehouse config --markdown > docs/configuration.md
	$(BIN)/python -m tests.tools.gallery > docs/messages.md

# The bot's image, tagged with the package version: the tag deploy/k8s deploys. Build it for
# your registry, then push it: make image IMAGE=registry.example.com/team/gatehouse
IMAGE ?= gatehouse
IMAGE_TAG := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	docker build -f deploy/Dockerfile -t $(IMAGE):$(IMAGE_TAG) .

# Checks every setting first and stops, listing what is missing, before any database is
# created; then migrates the database and serves until stopped.
run: $(RUNTIME_STAMP)
	$(BIN)/gatehouse run --migrate

# A whole incident against the Slack and Vault emulators, on SQLite: no accounts needed.
demo: $(STAMP)
	$(BIN)/python -m tests.demo

migrate: $(RUNTIME_STAMP)
	$(BIN)/gatehouse db upgrade

test: lint typecheck layers policy-test pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

# The example policies' own expectations, as teams run theirs in CI before a policy ships.
policy-test: $(STAMP)
	$(BIN)/gatehouse policy test deploy/policy.example.tests.yaml --policy deploy/policy.example.yaml
	$(BIN)/gatehouse policy test deploy/policy.oncall.example.tests.yaml \
		--policy deploy/policy.oncall.example.yaml

# Exit code 5 means pytest collected no test: that is a failure here, never a pass.
pytest: $(STAMP)
	$(BIN)/pytest -n 3 --dist loadgroup -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

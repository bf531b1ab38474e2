# Gatehouse: `make run` starts the bot, `make test` runs every check. Needs Python 3.11 and make.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt typecheck layers pytest migrate demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/gatehouse db upgrade
	$(BIN)/gatehouse run

# A whole incident against the Slack and Vault emulators, on SQLite: no accounts needed.
demo: $(STAMP)
	$(BIN)/python -m tests.demo

migrate: $(STAMP)
	$(BIN)/gatehouse db upgrade

test: lint typecheck layers pytest

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

# Exit code 5 means pytest collected no test: that is a failure here, never a pass.
pytest: $(STAMP)
	$(BIN)/pytest -n 2 -q; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis

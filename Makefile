# The README contract: `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml setup.py src/audionet/audiosocket/_framecore.c
	$(BIN)/python -m pip install --quiet -e '.[dev,fast]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/audionet demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src/audionet

# Two phases (see tests/conftest.py): the tests that do not time a real-time clock on both cores,
# then the paced ones (AudioSocket calls, bridges, a real Asterisk) alone, one at a time.
unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 -m "not paced"
	$(BIN)/python -m pytest -q -m paced

test: lint typecheck unit

bench: $(STAMP)
	bash bench/install_peers.sh
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
	find src -name '*.so' -delete

# Set-up, demo and tests on a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser demo test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-embedded.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-embedded.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# Debian's Chromium, for the test that opens `bft inspect`'s report in a headless browser (skipped without it). CI
# installs it (.ci/run); `make test` leaves the machine's system packages alone.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium could not be installed: the report's browser check will be skipped"

demo: setup
	$(BIN)/bft train --config configs/demo.yaml --overwrite true

test: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

test-fast: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow"

clean:
	rm -rf $(VENV) runs

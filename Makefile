# One entry point per verb. Every target builds .venv from the lock first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEV_PORT ?= 3000

# The browser test drives Debian's Chromium (Playwright's own browser download
# is not used). `make test` installs it when it is missing, and stops if it cannot.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends

.PHONY: install chromium demo test dev lint format bench clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

chromium: $(CHROMIUM)

# Tried first with the package lists at hand; when that fails (no lists, or stale
# ones), the lists are fetched and the install tried again.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "$@ is missing and there is no apt-get: install Chromium so that $@ exists" >&2; exit 1; }
	$(APT_INSTALL) chromium || { $(SUDO) apt-get update && $(APT_INSTALL) chromium; }
	test -x $@

demo: $(STAMP)
	$(BIN)/devops-assets demo

test: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest

dev: $(STAMP)
	$(BIN)/devops-assets dev --port $(DEV_PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .devops_assets

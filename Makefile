# Every target does its own set-up: virtual environment, dependencies, and the dataset.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint explore bench clean dataset

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[serve,export,distributed,dev]'
	touch $(STAMP)

# The official files: Debian/Ubuntu's package when nothing else has them (needs root and apt).
dataset: $(STAMP)
	@$(BIN)/fmnist data verify >/dev/null 2>&1 || ./scripts/install-dataset.sh

run: dataset
	$(BIN)/fmnist compare --preset quick --out reports/quick

explore: dataset
	$(BIN)/fmnist explore --out reports/explore

test: dataset
	./scripts/install-browser.sh
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) reports runs .pytest_cache

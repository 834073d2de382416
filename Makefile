# People run these; the README shows them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision are pinned to the builds this machine keeps on disk; an unpinned
# torch makes pip fetch a multi-GB build.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test lint format bench clean

$(BIN)/zoo: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_PINS)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(BIN)/zoo

install: $(BIN)/zoo

demo: install
	$(BIN)/python -m zoo list 'resnet*' --source torchvision
	$(BIN)/python -m zoo info resnet34
	$(BIN)/python -m zoo plugins

test: install
	HF_HUB_OFFLINE=1 ZOO_OFFLINE=1 $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check zoo tests plugins benchmarks
	$(BIN)/ruff format --check zoo tests plugins benchmarks

format: install
	$(BIN)/ruff format zoo tests plugins benchmarks
	$(BIN)/ruff check --fix zoo tests plugins benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

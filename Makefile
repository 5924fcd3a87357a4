# `make demo` and `make test` set everything up on first use (a venv with the pinned torch pair), then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.zoo-installed

.PHONY: setup demo test test-all test-wheel lint bench bench-gpu

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test,examples]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q
	$(MAKE) test-wheel

# Also the tests marked slow (the giants of the torchvision catalogue: about 3 more minutes on 2 cores).
test-all: $(STAMP)
	$(PY) -m pytest -q -m "slow or not slow"
	$(MAKE) test-wheel

# The installed package is the product: build the wheel, install it into a fresh venv that reuses the pinned
# torch pair of $(VENV) (a .pth line, so nothing is copied and zoo itself comes only from the wheel), and run
# the smoke test from a temporary folder outside the repository.
# Outside the repository, so that nothing of the checkout can be imported by accident.
SMOKE := $(or $(TMPDIR),/tmp)/zoo-wheel-smoke
test-wheel: $(STAMP)
	rm -rf dist $(SMOKE)
	$(PY) -m pip wheel -q --no-deps -w dist .
	$(PYTHON) -m venv $(SMOKE)/venv
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$$($(SMOKE)/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zoo-dev-deps.pth"
	$(SMOKE)/venv/bin/python -m pip install -q --no-deps dist/*.whl
	cd "$$(mktemp -d)" && ZOO_HOME="$$PWD/home" "$(SMOKE)/venv/bin/python" "$(CURDIR)/scripts/smoke_installed.py" "$(CURDIR)"

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

bench: $(STAMP)
	$(PY) bench/load.py --rounds 9
	$(PY) bench/download.py --rounds 5
	$(PY) bench/hub.py --rounds 11
	$(PY) bench/classify.py --images 64
	$(PY) bench/startup.py --rounds 9

# On a machine with a GPU: resnet50's time to first output and classification throughput, in under 5 minutes.
bench-gpu: $(STAMP)
	$(PY) bench/gpu.py

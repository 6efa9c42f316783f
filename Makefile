# losslab — the two set-up commands (each sets everything up first; both are idempotent):
#   make train     set up .venv, then fine-tune MiniLM on task=regression with its default loss (ARGS="loss=huber ...")
#   make test      set up .venv, then run the test suite (PYTEST_ARGS="-k losses ...")
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0 is found on local disk on losslab's dev/CI machines; elsewhere pip picks your
# platform's build of the same version (CUDA on Linux). Override: make train TORCH="torch==2.5.1".
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.losslab-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup browser train test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

train: setup
	$(PY) train.py $(ARGS)

# The MLflow UI test drives Debian's chromium through chromedriver: installed here when missing (needs root).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	    else echo "make: chromium/chromedriver missing and not root: the MLflow UI test will be skipped (sudo apt-get install chromium chromium-driver)"; fi; }

test: setup browser
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) bench/overhead.py

clean:
	rm -rf $(VENV) outputs/runs outputs/multiruns

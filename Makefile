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

.PHONY: setup debian train test bench clean

setup: $(STAMP)

# --use-pep517: seqeval ships only an sdist whose setup_requires (setuptools_scm) the legacy path fetches
# without its dependencies (ModuleNotFoundError: vcs_versioning); pip's PEP 517 build installs them.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet --use-pep517 -c constraints.txt -e ".[test]"
	touch $(STAMP)

train: setup
	$(PY) train.py $(ARGS)

# Debian packages some tests use, installed when missing (needs root): chromium + chromium-driver (the MLflow
# UI test drives a headless browser), wordnet-base (task=seq2seq's shipped subset is rebuilt and compared),
# slurm-wlm + munge (tests/test_slurm.py starts a one-node Slurm), postgresql (tests/test_mlflow_server.py
# runs an MLflow server on a throwaway PostgreSQL cluster).
DEBS := chromium chromium-driver wordnet-base slurm-wlm munge postgresql
debian:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && test -f /usr/share/wordnet/data.noun && \
	  command -v slurmctld >/dev/null && command -v munged >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS) >/dev/null; \
	    else echo "make: not root, so $(DEBS) are not installed: the tests needing them will be skipped (sudo apt-get install $(DEBS))"; fi; }

test: setup debian
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) outputs/runs outputs/multiruns

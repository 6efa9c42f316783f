# losslab — the two set-up commands (each sets everything up first; both are idempotent):
#   make train     set up .venv, then fine-tune MiniLM on task=regression with its default loss (ARGS="loss=huber ...")
#   make test      set up .venv, then run the test suite (PYTEST_ARGS="-k losses ...")
#   make check     the fast loop (about 2 min on 2 cores): unit tests of losses, statistics, the race, configs; no train.py
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0 is found on local disk on losslab's dev/CI machines; elsewhere pip picks your
# platform's build of the same version (CUDA on Linux). Override: make train TORCH="torch==2.5.1".
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.losslab-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup debian train test check bench clean

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

# Unit tests only: losses against their references, the report's statistics and their calibration, the race's
# simulation, configs, metrics, imports. A test that would start train.py is skipped (tests/conftest.py).
CHECK_TESTS := tests/test_losses.py tests/test_loss_fixes.py tests/test_report_stats.py tests/test_report_rows.py \
  tests/test_report_items.py tests/test_report_calibration.py tests/test_race.py tests/test_metrics.py \
  tests/test_configs.py tests/test_imports.py tests/test_ui.py tests/test_label_noise.py tests/test_locks.py tests/test_naming.py \
  tests/test_kinds.py
check: setup
	LOSSLAB_CHECK=1 $(PY) -m pytest -q -m "not slow" -p no:cacheprovider $(CHECK_TESTS) $(PYTEST_ARGS)

bench: setup
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) outputs/runs outputs/multiruns

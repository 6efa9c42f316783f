"""losslab.naming: the one rule for a sweep's run names and the report's rows, light enough for a job to name
its run without importing the report package (or torch, or mlflow)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import PYTHONPATH


def test_naming_imports_neither_the_report_nor_anything_heavy():
    code = ("import sys\nimport losslab.naming\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'mlflow', 'transformers', 'scipy')"
            " or m.startswith('losslab.report')))")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": PYTHONPATH},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr[-2000:]


def test_the_report_rows_and_the_run_names_share_one_rule():
    from losslab import naming
    from losslab.report import rows

    assert rows.row_labels is naming.row_labels and rows.run_labels is naming.run_labels
    assert rows.SEED_KEYS is naming.SEED_KEYS
    assert naming.short("1.4553179565665342") == "1.455" and naming.short("32") == "32"

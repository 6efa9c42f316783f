"""The answer at the end of a sweep, built from the MLflow store alone:

    python -m losslab.report <sweep dir | parent run id> [--uri sqlite:///.../mlflow.db] [--out DIR]

One module per concern (this package's ``__init__`` imports none of them: importing one never imports the rest):

- :mod:`~losslab.report.sweep`: the public API: :func:`~losslab.report.sweep.build`,
  :func:`~losslab.report.sweep.write`, :func:`~losslab.report.sweep.answer`, ... (``from losslab.report import
  sweep``);
- :mod:`~losslab.report.rows`: the sweep's runs as rows (one per loss and per other swept setting) and seed
  keys (every seed and the split: what pairs two rows' runs);
- :mod:`~losslab.report.stats`: the statistics on plain numbers: seed intervals, the comparison of two rows
  (seeds + the test items they share), the simultaneous comparison with the best; its docstring says what
  the report claims;
- :mod:`~losslab.report.items`: each metric suite on bootstrap resamples of the test items, from the runs'
  per-item predictions (``predictions/test.parquet``);
- :mod:`~losslab.report.flags`: rows that must not be ranked (degenerate, not converged) and what is only
  pointed out (seeds disagree);
- :mod:`~losslab.report.build`: all of it from the store (:func:`~losslab.report.build.build`);
- :mod:`~losslab.report.table`: the table, the comparison with the best, the one-line
  :func:`~losslab.report.table.answer`, ``report.md``; :mod:`~losslab.report.plots`: the plots; ``__main__``:
  the command line.
"""

"""Temperature scaling as the calibration papers ran it (losslab.metrics.temperature)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from losslab.metrics import temperature


def _authors(logits, labels, by="ece"):
    """torrvision/focal_calibration's set_temperature, re-written: T from 0.1 in steps of 0.1, 100 values, the
    first strict minimum of validation ECE (their ECELoss: 15 bins, (lower, upper]) or NLL."""
    z, y = torch.tensor(logits), torch.tensor(labels)

    def ece(scaled):
        conf, pred = torch.softmax(scaled, 1).max(1)
        acc = pred.eq(y)
        edges = torch.linspace(0, 1, 16)
        out = torch.zeros(1, dtype=z.dtype)
        for lo, hi in zip(edges[:-1], edges[1:]):
            inside = conf.gt(lo.item()) * conf.le(hi.item())
            if inside.float().mean() > 0:
                out += torch.abs(conf[inside].mean() - acc[inside].float().mean()) * inside.float().mean()
        return out.item()

    best, best_t, t = 10 ** 7, 1.0, 0.1
    for _ in range(100):
        value = ece(z / t) if by == "ece" else torch.nn.functional.cross_entropy(z / t, y).item()
        if best > value:
            best, best_t = value, t
        t += 0.1
    return best_t


def _overconfident(n=1000, k=4, sharpen=3.0, seed=0):
    """Labels drawn from softmax(z): z is calibrated; z * sharpen is over-confident by that factor."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, k))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    return z * sharpen, y


@pytest.mark.parametrize("by", ["ece", "nll"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_is_the_authors_grid_search(by, seed):
    z, y = _overconfident(seed=seed, sharpen=[0.5, 2.0, 3.0][seed])
    assert temperature.fit(z, y, by=by) == pytest.approx(_authors(z, y, by), abs=1e-9)


def test_an_overconfident_model_gets_its_sharpening_back_and_keeps_its_predictions():
    z, y = _overconfident(n=20000, sharpen=3.0)
    t = temperature.fit(z, y, by="nll")
    assert 2.7 <= t <= 3.3  # the NLL optimum recovers the over-confidence factor
    assert (np.argmax(z / t, 1) == np.argmax(z, 1)).all()
    curves = temperature.criteria(z, y)
    assert curves["ece"][temperature.GRID.tolist().index(t)] < curves["ece"][temperature.GRID.tolist().index(1.0)]


def test_bad_criterion_is_refused():
    with pytest.raises(ValueError, match="ece' or 'nll"):
        temperature.fit(np.zeros((2, 2)), [0, 1], by="brier")


@pytest.mark.slow
def test_a_classification_sweep_reports_ece_after_temperature_scaling(tmp_path):
    """A real sweep: the report adds ``ts_ece`` / ``ts_log_loss`` (each run's T fitted on its own validation
    predictions), with both intervals, and a declared ``ts_ece`` gets its verdict row."""
    from conftest import run_train, runs, store_uri

    from losslab import predictions
    from losslab.metrics import get

    out = run_train(["-m", "task=sentiment", "loss=cross_entropy,focal_flsd53", "seed=1,2", "debug=quick",
                     "report.metrics=[ts_ece]"], tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    [sweep] = [p.parent for p in tmp_path.glob("multiruns/*/*/mlflow_parent.txt")]
    report = (sweep / "report" / "report.md").read_text()
    table = (sweep / "report" / "table.md").read_text()
    header = table.splitlines()[0]
    assert "ts_ece ↓" in header and "ts_log_loss ↓" in header
    column = header.split("|").index(" ts_ece ↓ ")
    for line in table.splitlines()[2:]:
        assert "s [" in line.split("|")[column] and "t [" in line.split("|")[column]
    assert "Temperature scaling (`ts_` columns)" in report and "Declared metrics (verdicts): `macro_f1`, `ts_ece`" in report
    against = report.split("## Against the best row")[1]
    assert "ts_ece ↓" in against.splitlines()[4]

    # the cell's mean is the mean over seeds of each run's ECE of test logits / T, T fitted on its validation
    expected = []
    for child in [r for r in runs(tmp_path) if r.data.tags.get("choice.loss") == "cross_entropy"
                  and "mlflow.parentRunId" in r.data.tags]:
        rid = child.info.run_id
        _, vp, vy = predictions.download(store_uri(tmp_path), rid, "validation", str(tmp_path / rid / "v"))
        _, tp, ty = predictions.download(store_uri(tmp_path), rid, "test", str(tmp_path / rid / "t"))
        t = temperature.fit(vp, vy)
        expected.append(get("classification").score(tp / t, ty, np.ones((1, len(ty))))["ece"][0])
    assert len(expected) == 2
    row = next(line for line in table.splitlines()[2:] if line.split("|")[1].strip() == "cross_entropy")
    assert row.split("|")[column].split("<br>")[0].strip().strip("*") == f"{np.mean(expected):.4f}"

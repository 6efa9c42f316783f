"""What the metric suites' ``evaluate`` modules share (they import it: ``losslab`` is installed)."""

import datasets
import evaluate


def info(description: str, inputs: str, predictions, references) -> evaluate.MetricInfo:
    """The ``MetricInfo`` of a suite taking ``predictions`` and ``references`` of the given feature types."""
    return evaluate.MetricInfo(
        description=description,
        citation="",
        inputs_description=inputs,
        features=datasets.Features({"predictions": predictions, "references": references}),
    )

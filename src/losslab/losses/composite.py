"""``composite``: a weighted sum of other losses, each normalized by the loss contract before weighting."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from losslab.kinds import ANY
from losslab.losses.base import Loss, fit_to_train


class Composite(Loss):
    """Σ_i w_i · loss_i(outputs, labels, num_items_in_batch); each term is logged as a component."""

    task_kinds = ANY  # narrowed per instance to what every term serves (preflight checks the terms)
    formula = "Σ_i w_i · L_i"
    reference = "the weighted sum of its terms, each checked on its own"

    def __init__(self, terms: Mapping[str, Mapping]):
        super().__init__()
        if not terms:
            raise ValueError("composite: give at least one term: terms.<name>: {loss: {...}, weight: w}")
        self.names = list(terms)
        self.weights = [float(t.get("weight", 1.0)) for t in terms.values()]
        self.terms = torch.nn.ModuleList() if all(isinstance(t["loss"], torch.nn.Module) for t in terms.values()) \
            else None
        self._terms = [t["loss"] for t in terms.values()]
        if self.terms is not None:
            self.terms.extend(self._terms)
        kinds = set(ANY)
        for term in self._terms:
            kinds &= set(getattr(term, "task_kinds", ANY))
        self.task_kinds = tuple(k for k in ANY if k in kinds)

    @property
    def needs_train_labels(self) -> bool:
        return any(getattr(t, "needs_train_labels", False) for t in self._terms)

    def fit(self, train_labels, num_classes: int | None = None) -> dict[str, float]:
        """Fit every term that needs the training labels (e.g. balanced class weights); ``num_classes`` (the
        task's class count) goes to each term whose ``fit`` takes it."""
        fitted = {}
        for name, term in zip(self.names, self._terms):
            fitted.update({f"{name}.{k}": v for k, v in fit_to_train(term, train_labels, num_classes).items()})
        return fitted

    def forward(self, outputs, labels, num_items_in_batch=None):
        total, components = 0.0, {}
        for name, weight, term in zip(self.names, self.weights, self._terms):
            value = term(outputs, labels, num_items_in_batch=num_items_in_batch)
            components[name] = value.detach()
            total = total + weight * value
        self.last_components = components
        return total

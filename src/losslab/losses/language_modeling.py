"""Causal language-modelling losses: logits ``(batch, time, vocab)``, labels ``(batch, time)`` with -100 on
padding. Position t predicts token t + 1 (labels are shifted here, as transformers' ForCausalLMLoss does),
and items are the real next tokens: the Trainer's ``num_items_in_batch`` for causal LM."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from losslab.kinds import CAUSAL_LM, IGNORE_INDEX
from losslab.losses.base import Loss


def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened next-token logits ``(items, vocab)`` in fp32 and their targets ``(items,)``."""
    if logits.dim() != 3 or labels.dim() != 2 or logits.shape[:2] != labels.shape:
        raise ValueError(f"causal LM loss: logits (batch, time, vocab) and labels (batch, time); "
                         f"got {tuple(logits.shape)} and {tuple(labels.shape)}")
    z = logits[:, :-1, :].reshape(-1, logits.size(-1)).float()
    y = labels[:, 1:].reshape(-1).to(z.device)
    return z, y


class TokenCrossEntropy(Loss):
    """Next-token cross-entropy."""

    task_kinds = (CAUSAL_LM,)
    formula = "−log softmax(z_t)_{x_{t+1}}"
    reference = "transformers ForCausalLMLoss; torch cross_entropy on shifted tokens"

    def sum_and_count(self, logits, labels):
        z, y = shifted(logits, labels)
        return F.cross_entropy(z, y, ignore_index=IGNORE_INDEX, reduction="sum"), (y != IGNORE_INDEX).sum()


class TokenLabelSmoothing(Loss):
    """Next-token cross-entropy with label smoothing ε; padding is ignored, not smoothed."""

    task_kinds = (CAUSAL_LM,)
    formula = "(1 − ε)(−log p_{x_{t+1}}) + ε · mean_v(−log p_v)"
    paper = "Szegedy et al., CVPR 2016"
    reference = "transformers LabelSmoother(shift_labels=True); torch cross_entropy(label_smoothing=ε)"

    def __init__(self, epsilon: float = 0.1):
        super().__init__()
        self.epsilon = float(epsilon)

    def sum_and_count(self, logits, labels):
        z, y = shifted(logits, labels)
        total = F.cross_entropy(z, y, ignore_index=IGNORE_INDEX, label_smoothing=self.epsilon, reduction="sum")
        return total, (y != IGNORE_INDEX).sum()


class ZLoss(Loss):
    """Next-token cross-entropy plus a penalty on the squared log-partition (keeps logits from drifting)."""

    task_kinds = (CAUSAL_LM,)
    formula = "−log p_{x_{t+1}} + c · (log Σ_v e^{z_v})²"
    paper = "Chowdhery et al. (PaLM), 2022"
    reference = "NumPy closed form"

    def __init__(self, coefficient: float = 1e-4):
        super().__init__()
        self.coefficient = float(coefficient)

    def sum_and_count(self, logits, labels):
        z, y = shifted(logits, labels)
        keep = y != IGNORE_INDEX
        # One logsumexp serves both terms, and no boolean indexing of z (at LM vocabularies each would be a
        # full pass over, or a copy of, the logits).
        lse = torch.logsumexp(z, dim=-1)
        picked = z.gather(1, y.clamp_min(0).unsqueeze(1)).squeeze(1)
        ce = torch.where(keep, lse - picked, 0.0).sum()
        zterm = torch.where(keep, lse**2, 0.0).sum()
        return ce + self.coefficient * zterm, keep.sum(), {"ce": ce, "z": zterm}


MIN_TORCH_CHUNKED = "2.13"  # torch.nn.functional.linear_cross_entropy and LinearCrossEntropyOptions


class ChunkedCrossEntropy(Loss):
    """Next-token cross-entropy from the last hidden states and the output embedding, in chunks, so the full
    ``(tokens, vocab)`` logits tensor is never built. Wraps ``torch.nn.functional.linear_cross_entropy``
    with ``LinearCrossEntropyOptions`` (torch >= 2.13). Needs ``bind(model.get_output_embeddings())`` and a
    forward pass that returns hidden states (``output_hidden_states=True``)."""

    task_kinds = (CAUSAL_LM,)
    formula = "−log softmax(h_t Wᵀ + b)_{x_{t+1}}, computed chunk by chunk"
    reference = "token_cross_entropy on the full logits"
    needs_output_embeddings = True

    def __init__(self, chunk_size: int = 256):
        from torch.torch_version import TorchVersion

        from losslab.errors import ConfigError

        if TorchVersion(torch.__version__) < MIN_TORCH_CHUNKED:
            raise ConfigError(f"chunked_cross_entropy: needs torch >= {MIN_TORCH_CHUNKED} "
                              f"(torch.nn.functional.linear_cross_entropy), this is torch {torch.__version__}: "
                              "upgrade torch or use loss=token_cross_entropy")
        super().__init__()
        self.chunk_size = int(chunk_size)
        self._head = None

    def bind(self, head: torch.nn.Module) -> ChunkedCrossEntropy:
        self._head = head
        return self

    def attach(self, model) -> None:
        """Prepare a transformers causal LM for this loss: hidden states in its outputs, its head bound."""
        model.config.output_hidden_states = True
        self.bind(model.get_output_embeddings())

    def sum_hidden(self, hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, bias=None):
        h = hidden[:, :-1, :].reshape(-1, hidden.size(-1))
        y = labels[:, 1:].reshape(-1).to(h.device)
        options = torch.nn.LinearCrossEntropyOptions(batch_chunk_size=self.chunk_size)
        total = F.linear_cross_entropy(h, weight, y, linear_bias=bias, reduction="sum",
                                       ignore_index=IGNORE_INDEX, options=options)
        return total, (y != IGNORE_INDEX).sum()

    def forward(self, outputs, labels, num_items_in_batch=None):
        from losslab.losses.base import normalize

        if self._head is None:
            raise RuntimeError("chunked_cross_entropy: call bind(model.get_output_embeddings()) first")
        hidden = outputs["hidden_states"][-1]
        total, count = self.sum_hidden(hidden, self._head.weight, labels, getattr(self._head, "bias", None))
        return normalize(total, count, num_items_in_batch)

"""Build the tokenizer and the model with the head a task needs: pretrained, or from a config."""

from __future__ import annotations

import functools
import json
import os

from safetensors import safe_open
from torch import nn

from losslab import kinds
from losslab.paths import package_path
from losslab.tasks import schema

# transformers is imported inside functions: run.py imports this module before preflight has checked the config,
# and a refused config loads no model classes (test_bad_input)


def head_width(loss, task_cfg) -> int:
    """Outputs of the head: the task's number of labels, unless the loss asks for another width
    (gaussian_nll: a mean and a variance per target; coral, corn: K − 1 tasks for K levels)."""
    n = int(task_cfg.get("num_labels") or 1)
    return int(loss.head_width(n)) if hasattr(loss, "head_width") else n


@functools.lru_cache(maxsize=8)
def _tokenizer(source: str):
    """A tokenizer, loaded once per process (the jobs of a sweep in one process share it; it is not trained)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


def build(model_cfg, task_cfg, width: int | None = None, label_names: list[str] | None = None, loss=None):
    """``(model, tokenizer)`` for the task: the head its kind needs (``kind.model``, ``kind.problem_type``),
    with ``width`` outputs (default: the task's number of labels). ``loss``: the loss it trains with; one that
    brings its head (``loss.head_layer(in_features, width)``, ``losslab.losses.base``) gets it in place of the
    head's final linear layer (:func:`replace_head_layer`)."""
    import transformers
    from transformers import AutoConfig

    kind = kinds.get(task_cfg.kind)
    if kind.model == "EncoderDecoderModel":
        return _encoder_decoder(model_cfg, task_cfg)
    auto = getattr(transformers, kind.model)

    width = int(width or task_cfg.get("num_labels") or 1)
    head = {"num_labels": width}
    if kind.problem_type:
        head["problem_type"] = kind.problem_type
    if kind.next_token:  # the vocabulary is the output; a BERT-style config becomes a decoder
        head = {"is_decoder": True}
    if label_names and len(label_names) == width:  # class names in the model config (and the MLflow params)
        head["id2label"] = dict(enumerate(label_names))
        head["label2id"] = {n: i for i, n in enumerate(label_names)}
    source = model_cfg.get("name_or_path")
    tokenizer_source = model_cfg.get("tokenizer") or source
    if not tokenizer_source:
        raise ValueError("model: set model.tokenizer (or model.name_or_path) to load a tokenizer")
    tokenizer = _tokenizer(package_path(tokenizer_source))
    if model_cfg.get("architecture"):
        architecture = dict(model_cfg.architecture)
        config = AutoConfig.for_model(architecture.pop("model_type"), **architecture, **head)
        model = auto.from_config(config)
    elif source:
        model = auto.from_pretrained(package_path(source), **head)
    else:
        raise ValueError("model: set model.name_or_path (pretrained) or model.architecture (from a config)")
    # The embedding table must cover the tokenizer's vocabulary; num_labels is the head's width, never the vocab.
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(
            f"model: the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is "
            f"{model.config.vocab_size}; set model.architecture.vocab_size >= {len(tokenizer)}"
        )
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if loss is not None and not kind.vocab_output:
        replace_head_layer(model, loss, width, None if model_cfg.get("architecture") else package_path(source))
    if kind.next_token and getattr(model, "loss_type", None) is None:
        # The Trainer counts a step's items (num_items_in_batch) over labels[..., 1:], the tokens a next-token
        # loss scores, only for a model whose loss_type maps to ForCausalLMLoss. GPT2LMHeadModel and
        # BertLMHeadModel name none: every label was counted, and each causal-LM loss came out too small by
        # a sentence's first token (~4% on VADER).
        model.loss_type = "ForCausalLM"
    return model, tokenizer


def replace_head_layer(model, loss, width: int, source: str | None = None):
    """Put the layer ``loss.head_layer(in_features, width)`` in place of the final linear layer of ``model``'s
    classification head (``classifier``, ``classifier.out_proj``, ``score``: the last ``nn.Linear`` with
    ``width`` outputs outside the base model), keeping the encoder, pooler and dropout; nothing when the loss
    brings no layer (None). The layer is a submodule of the model: its parameters are trained, saved in the
    model's state dict (``save_pretrained``, the Trainer's checkpoints) and loaded back into a model built the
    same way (the Trainer's ``load_best_model_at_end`` and resuming load a checkpoint into this model).
    ``source``: the folder the model was loaded from; when it holds this layer's parameters (a model saved
    with the same loss's head: ``model.name_or_path=<a checkpoint>``), they are loaded into the new layer, which
    ``from_pretrained`` alone would have dropped as unexpected keys. Returns the dotted name of the layer, or
    None."""
    make = getattr(loss, "head_layer", None)
    if not callable(make):
        return None
    base = getattr(model, "base_model_prefix", "") or ""
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.Linear) and m.out_features == width and name
             and not (base and (name == base or name.startswith(base + ".")))]
    if not found:
        raise ValueError(f"loss {type(loss).__name__} brings its own head layer, but {type(model).__name__} has no "
                         f"final linear layer with {width} outputs to replace")
    name, old = found[-1]
    layer = make(old.in_features, width)
    if layer is None:
        return None
    layer = layer.to(device=old.weight.device, dtype=old.weight.dtype)
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    setattr(parent, name.rpartition(".")[2], layer)
    if source and _load_saved_layer(layer, source, name):
        layer.loaded_from = source  # a loss that initializes its layer from the data (coral's prior) leaves it
    return name


def _load_saved_layer(layer, source: str, prefix: str) -> bool:
    """Load ``layer`` from the safetensors weights in the folder ``source`` (keys ``<prefix>.<parameter>``)
    when they hold it; strict: a saved layer of another shape is an error, never a silent new head."""
    index = os.path.join(source, "model.safetensors.index.json")
    if os.path.isfile(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        files = sorted({os.path.join(source, v) for k, v in weight_map.items() if k.startswith(prefix + ".")})
    else:
        single = os.path.join(source, "model.safetensors")
        files = [single] if os.path.isfile(single) else []
    state = {}
    for path in files:
        with safe_open(path, framework="pt") as f:
            state.update({k[len(prefix) + 1:]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix + ".")})
    own = layer.state_dict()
    if not state or set(state) != set(own):
        return False  # a model saved with another head (a plain linear layer): the new layer starts fresh
    layer.load_state_dict({k: v.to(dtype=own[k].dtype) for k, v in state.items()})
    return True


def _encoder_decoder(model_cfg, task_cfg):
    """bert2bert: an ``EncoderDecoderModel`` whose encoder and decoder both start from the model (pretrained:
    the decoder's cross-attention is new; from a config: all random), set up to generate with the tokenizer's
    [CLS] as the decoder's start token and [SEP] as its end."""
    from transformers import AutoConfig, EncoderDecoderConfig, EncoderDecoderModel

    source = model_cfg.get("name_or_path")
    tokenizer = _tokenizer(package_path(model_cfg.get("tokenizer") or source))
    if model_cfg.get("architecture"):
        architecture = dict(model_cfg.architecture)
        kind = architecture.pop("model_type")
        encoder = AutoConfig.for_model(kind, **architecture)
        decoder = AutoConfig.for_model(kind, **architecture, is_decoder=True, add_cross_attention=True)
        model = EncoderDecoderModel(config=EncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    elif source:
        path = package_path(source)
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(path, path)
    else:
        raise ValueError("model: set model.name_or_path (pretrained) or model.architecture (from a config)")
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = start
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = end
    model.config.vocab_size = model.config.decoder.vocab_size
    gen = schema.value(task_cfg, "generation") or schema.GenerationConfig()
    model.generation_config.max_length = gen.max_new_tokens + 1  # + the start token
    model.generation_config.num_beams = gen.num_beams
    return model, tokenizer

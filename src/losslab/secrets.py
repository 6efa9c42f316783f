"""Config keys that hold secrets are masked wherever losslab logs the config (MLflow params, the
``losslab.overrides`` / ``losslab.command`` tags, ``config/config.yaml``).

The rule, on the last part of a key split into words (``tracking.db_password`` → ``db``, ``password``;
``apiKey`` → ``api``, ``key``):

- any word is ``password``, ``passwd``, ``secret``, ``credential(s)``, ``passphrase``: masked;
- the last word is ``token`` or ``key`` (``hub_token``, ``api_key``, ``apikey``, ``access_key``): masked, except a
  tokenizer's special tokens (``pad_token``, ``eos_token``, ...);
- words are whole words: ``monkey``, ``tokenizer``, ``max_new_tokens``, ``metric_key_prefix`` are not secrets.
"""

from __future__ import annotations

import re

MASK = "***"
_ALWAYS = {"password", "passwd", "secret", "secrets", "credential", "credentials", "passphrase"}
_LAST = {"token", "key", "apikey"}
_SPECIAL = {"pad", "eos", "bos", "cls", "sep", "unk", "mask", "start", "end", "decoder", "sentinel"}


def words(key: str) -> list[str]:
    last = str(key).lstrip("+~").split(".")[-1]
    last = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", last)  # apiKey -> api_Key
    return [w for w in re.split(r"[_\-\s]+", last.lower()) if w]


def is_secret(key: str) -> bool:
    ws = words(key)
    if not ws:
        return False
    if _ALWAYS & set(ws):
        return True
    if ws[-1] in _LAST or ws[-1].endswith("apikey"):
        return not (ws[-1] == "token" and len(ws) > 1 and ws[-2] in _SPECIAL)
    return False


def mask_tree(node, prefix: str = ""):
    """A copy of a plain container (dicts, lists) with every secret's value replaced by ``***``."""
    if isinstance(node, dict):
        return {k: (MASK if is_secret(str(k)) and v not in (None, "") and not isinstance(v, dict)
                    else mask_tree(v, f"{prefix}.{k}")) for k, v in node.items()}
    if isinstance(node, list):
        return [mask_tree(v, prefix) for v in node]
    return node


def mask_override(override: str) -> str:
    """``+tracking.password=hunter2`` -> ``+tracking.password=***``."""
    key, eq, value = str(override).partition("=")
    return f"{key}={MASK}" if eq and value and is_secret(key) else override


def mask_overrides(overrides) -> list[str]:
    return [mask_override(o) for o in overrides]

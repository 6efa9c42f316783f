"""losslab's one credentials policy: what is masked wherever losslab (or Hydra, MLflow, a library) writes the
config, a command line, an error or a log line: MLflow params and tags (``losslab.command``,
``losslab.overrides``, ``error``), ``error.txt``, ``config/config.yaml``, Hydra's ``.hydra/`` files and
``multirun.yaml``, log files, and the console.

**Secret keys**, on the last part of a key split into words (``tracking.db_password`` → ``db``, ``password``;
``apiKey`` → ``api``, ``key``):

- any word is ``password``, ``passwd``, ``secret``, ``credential(s)``, ``passphrase``: masked;
- the last word is ``token`` or ``key`` (``hub_token``, ``api_key``, ``apikey``, ``access_key``): masked, except a
  tokenizer's special tokens (``pad_token``, ``eos_token``, ...);
- words are whole words: ``monkey``, ``tokenizer``, ``max_new_tokens``, ``metric_key_prefix`` are not secrets.

A secret key's value becomes ``***`` (in a config tree, in an override ``key=value``, and in free text
``key=value``).

**Credentials in a URL**, in any value or text (``s3://user:pass@bucket/x.csv``,
``http://user:pass@host:5000``, ``postgresql+psycopg2://user:pass@[::1]/db``): everything before the host
becomes ``***`` (``s3://***@bucket/x.csv``); a user name alone (``https://TOKEN@github.com``) is masked too,
since a token is often passed as one. A password holding ``/``, ``?`` or ``#`` (unencoded) is masked up to the
last ``@``. An ``@`` in a path (``http://host/a@b``) is not a credential. Query parameters named like a secret
(``?token=``, ``api_key=``, ``X-Amz-Signature=``, ``X-Amz-Credential=``, ``sig=``) become ``***``.

:func:`mask_text` applies both to any text; :func:`mask_tree` to a config tree; :func:`mask_override(s)` to a
command line; :func:`mask_console` to everything this process prints or logs.
"""

from __future__ import annotations

import re

MASK = "***"
_ALWAYS = {"password", "passwd", "secret", "secrets", "credential", "credentials", "passphrase"}
_LAST = {"token", "key", "apikey"}
_SPECIAL = {"pad", "eos", "bos", "cls", "sep", "unk", "mask", "start", "end", "decoder", "sentinel"}
_QUERY_LAST = {"sig", "signature", "pwd", "auth", "authorization"}  # query parameters (SAS, presigned URLs)


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


# ---------------------------------------------------------------------------------------------- URLs in text
# the scheme's colon may come escaped (Hydra writes a sweep job's override s3://u:p@b as s3\://u\:p@b)
_SCHEME = re.compile(r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*\\?://")
_URL_END = re.compile(r"[\s'\"<>`]")  # a URL in text ends at whitespace or a quote
_PAIR = re.compile(r"(?<![\w.?&\-])(-{0,2}[+~]?[A-Za-z_][\w.\-]*)=([^\s'\"]+)")  # key=value in free text


def _is_query_secret(name: str) -> bool:
    ws = words(name)
    return is_secret(name) or bool(ws) and ws[-1] in _QUERY_LAST


def _mask_query(query: str) -> str:
    parts = re.split(r"([&;])", query)
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and value and _is_query_secret(name):
            parts[i] = f"{name}={MASK}"
    return "".join(parts)


def _mask_url(rest: str, userinfo: str = MASK + "@") -> str:
    """``rest``: a URL after its ``scheme://``, with its userinfo replaced by ``userinfo``."""
    cut = re.search(r"[/?#]", rest)
    netloc, tail = (rest[:cut.start()], rest[cut.start():]) if cut else (rest, "")
    if "@" in netloc:
        rest = userinfo + netloc[netloc.rfind("@") + 1:] + tail
    elif "@" in tail and ":" in netloc and not netloc.lstrip("\\").startswith("["):
        port = netloc.split(":", 1)[1]
        if port and not port.isdigit():  # user:pass with an unencoded / ? or # in the password
            rest = userinfo + rest[rest.rfind("@") + 1:]
    query = re.search(r"\?([^#]*)", rest)
    if query and "=" in query.group(1):
        rest = rest[:query.start(1)] + _mask_query(query.group(1)) + rest[query.end(1):]
    return rest


def _urls(text: str, userinfo: str) -> str:
    """Each URL of ``text`` masked; a URL ends at whitespace, a quote or the next ``scheme://`` (a sweep's
    ``a://...,b://...``, a URL in another's query)."""
    starts = list(_SCHEME.finditer(text))
    out, pos = [], 0
    for i, match in enumerate(starts):
        end = _URL_END.search(text, match.end())
        end = min(end.start() if end else len(text), starts[i + 1].start() if i + 1 < len(starts) else len(text))
        out += [text[pos:match.end()], _mask_url(text[match.end():end], userinfo)]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def mask_text(text) -> str:
    """Any text with the values of secret keys (``password=...``) and the credentials of URLs masked."""
    text = str(text)
    if "=" in text:
        text = _PAIR.sub(lambda m: f"{m.group(1)}={MASK}" if is_secret(m.group(1)) else m.group(0), text)
    if "://" in text:
        text = _urls(text, MASK + "@")
    return text


def without_credentials(uri) -> str:
    """A URI that must stay usable, stripped of its credentials: ``http://user:pass@host:5000`` ->
    ``http://host:5000`` (MLflow then reads ``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD``)."""
    return _urls(str(uri), "")


# ------------------------------------------------------------------------------------- configs, command lines
def mask_tree(node, prefix: str = ""):
    """A copy of a plain container (dicts, lists) with every secret's value replaced by ``***`` and every text
    masked by :func:`mask_text` (a URL's credentials)."""
    if isinstance(node, dict):
        return {k: (MASK if is_secret(str(k)) and v not in (None, "") and not isinstance(v, dict)
                    else mask_tree(v, f"{prefix}.{k}")) for k, v in node.items()}
    if isinstance(node, list):
        return [mask_tree(v, prefix) for v in node]
    if isinstance(node, str):
        return mask_text(node)
    return node


def mask_override(override: str) -> str:
    """``+tracking.password=hunter2`` -> ``+tracking.password=***``; ``task.data.train=s3://u:p@b/x.csv`` ->
    ``task.data.train=s3://***@b/x.csv``."""
    key, eq, value = str(override).partition("=")
    return f"{key}={MASK}" if eq and value and is_secret(key) else mask_text(override)


def mask_overrides(overrides) -> list[str]:
    return [mask_override(o) for o in overrides]


# ------------------------------------------------------------------------------------------------- the console
class _MaskedStream:
    """A text stream whose writes are masked (each write on its own: print, logging and tracebacks write whole
    strings or lines)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        self._stream.write(mask_text(text) if isinstance(text, str) else text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        if name == "_stream":
            raise AttributeError(name)
        return getattr(self._stream, name)


def _masking_factory(factory):
    import traceback

    def make(*args, **kwargs):
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
            masked = mask_text(message)
            if masked != message:
                record.msg, record.args = masked, None
            if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
                text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                masked = mask_text(text)
                if masked != text:
                    record.exc_text = masked  # what a Formatter prints instead of formatting the exception
        except Exception:  # a record that cannot be formatted is the handler's to report, as before
            pass
        return record

    make.losslab_masking = True
    return make


def mask_console() -> None:
    """From now on in this process, everything written to ``sys.stdout`` / ``sys.stderr`` and every log record
    (console and log files alike) is masked: Hydra's own error lines, MLflow's ``View run ... at <uri>``,
    tracebacks. Idempotent; ``train.py`` calls it first, the Hydra callback again in a launcher's workers."""
    import logging
    import sys

    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _MaskedStream):
            setattr(sys, name, _MaskedStream(stream))
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "losslab_masking", False):
        logging.setLogRecordFactory(_masking_factory(factory))

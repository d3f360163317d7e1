"""Redaction of secrets in trace metadata (environment dumps can hold tokens and keys)."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

# A secret-looking word in a key, not inside a longer word (TOKEN in HF_TOKEN, not in tokenizer).
_SECRET_KEY = re.compile(
    r"(?<![a-z])(?:tokens?|secrets?|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|private[_-]?key|credentials?"
    r"|auth(?:orization)?|cookies?|session[_-]?id)(?![a-z])",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"\b(?:hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,})"
)
# KEY=value pairs inside log lines or command lines, where KEY looks secret.
_ASSIGNMENT = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)=(\S+)")


def redact_text(text: str) -> str:
    """`text` with secret-looking values and KEY=value pairs replaced by `<redacted>`."""
    text = _SECRET_VALUE.sub(REDACTED, text)

    def assignment(match: re.Match[str]) -> str:
        return f"{match.group(1)}={REDACTED}" if _SECRET_KEY.search(match.group(1)) else match.group()

    return _ASSIGNMENT.sub(assignment, text)


def redact(value: Any, key: str = "") -> Any:
    """Return `value` with secret-looking keys and values replaced by `<redacted>`."""
    if key and _SECRET_KEY.search(key) and not isinstance(value, (dict, list)):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value

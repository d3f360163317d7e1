"""Text from a trace made harmless where it is shown: in a terminal, in plotly labels, in a <script> element.

Trace names, device names, file names, pack titles and error messages are untrusted. In a terminal an
escape sequence in them could set the window title or clear the screen, and a bidi override could reorder
what is shown; plotly renders a subset of HTML in labels (links, bold); and a `<!--` or `</script>` inside
JSON placed in a script element ends or corrupts it.
"""

from __future__ import annotations

import html
import re
from typing import Any

from traceview.jsonify import dumps

# C0 controls other than \t and \n, DEL, C1 controls, the bidi embeddings/overrides/isolates, lone surrogates.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# What JSON leaves raw that a terminal or a script element must not see (C0 controls JSON escapes itself).
_JSON_UNSAFE = re.compile("[<>&\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_JSON_TERMINAL_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Figure keys whose strings are plotly templates we write (markup intended) or the theme, not trace text.
_PLOTLY_MARKUP_KEYS = frozenset({"hovertemplate", "texttemplate", "template"})


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def terminal_safe(text: str) -> str:
    """`text` with every control character but newline and tab, DEL, and the bidi overrides shown escaped.

    `"\\x1b]0;x"` becomes the visible `\\x1b]0;x`; applying it twice changes nothing more.
    """
    return _TERMINAL_UNSAFE.sub(_visible, text)


def json_terminal_safe(text: str) -> str:
    """JSON text with DEL, C1 controls, bidi overrides and lone surrogates as `\\uXXXX` escapes (lossless)."""
    return _JSON_TERMINAL_UNSAFE.sub(_json_escape, text)


def script_json(value: Any) -> str:
    """`value` as JSON (traceview.jsonify) that can sit inside a <script> element: `<`, `>`, `&`, U+2028/9 as
    `\\uXXXX` (lossless)."""
    return script_safe_json_text(dumps(value))


def script_safe_json_text(text: str) -> str:
    """JSON text made safe for a <script> element (the escaped characters can only occur inside JSON strings)."""
    return _JSON_UNSAFE.sub(_json_escape, text)


def plotly_text(text: str) -> str:
    """A label for plotly: `<`, `>` and `&` as entities, so plotly shows them instead of reading tags."""
    return html.escape(text, quote=False)


def plotly_safe(value: Any, key: str = "") -> Any:
    """A figure's JSON (a dict from `fig.to_plotly_json()` or `json.loads`) with every label escaped.

    Every string is escaped except hover/text templates and the theme, which hold the markup we wrote.
    """
    if key in _PLOTLY_MARKUP_KEYS:
        return value
    if isinstance(value, str):
        return plotly_text(value)
    if isinstance(value, dict):
        return {k: plotly_safe(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [plotly_safe(v) for v in value]
    return value

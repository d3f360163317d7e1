"""Long names (kernels, ops, code paths) shortened for a table cell so that different names stay different.

A name that fits is kept. A longer one keeps its head and its tail (`void ` dropped first), which is enough for
most; names that would then read the same keep the part where they differ instead of the tail, and what still
reads the same (or equals another name) ends in a tag from a hash of the full name. The full name goes in the
HTML cell's title and stays whole in the JSON report.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

ELLIPSIS = "…"
DEFAULT_WIDTH = 48
MIN_WIDTH = 24  # room for a head, the part that differs and a tag
CONTEXT = 4  # characters kept before the first difference


def shorten_names(names: Iterable[str], width: int = DEFAULT_WIDTH) -> dict[str, str]:
    """Each distinct name -> a form of at most `width` characters; different names get different forms."""
    width = max(width, MIN_WIDTH)
    distinct = sorted(set(names))
    short = {name: abbreviate(name, width) for name in distinct}
    for group in _collisions(short):
        simple = {name: _simplified(name, width) for name in group}
        if len(set(simple.values())) < len(group):  # they differ only in what was dropped: keep it
            simple = {name: name for name in group}
        for name in group:
            others = [form for other, form in simple.items() if other != name]
            short[name] = _around_difference(simple[name], others, width)
    tag_length = 6
    while collided := _collisions(short):
        for group in collided:
            for name in group:
                if len(name) > width:
                    short[name] = _tagged(name, width, tag_length)
        tag_length += 2
    return short


def abbreviate(name: str, width: int = DEFAULT_WIDTH) -> str:
    """`name` if it fits in `width`, else its head, an ellipsis and its tail (a leading `void ` and the
    parameter list of a C++ signature, `f(int, float*)` -> `f(…)`, dropped first)."""
    name = _simplified(name, width)
    if len(name) <= width:
        return name
    tail = width // 3
    return name[: width - tail - 1] + ELLIPSIS + name[-tail:]


def _simplified(name: str, width: int) -> str:
    """A long name without a leading `void ` and without the parameter list of a signature."""
    return name if len(name) <= width else _without_parameters(name.removeprefix("void "))


def _without_parameters(name: str) -> str:
    """A signature's name without its parameter list (the last top-level `(...)` at the end), if it has one."""
    if not name.endswith(")"):
        return name
    depth = 0
    for index in range(len(name) - 1, 0, -1):
        depth += {")": 1, "(": -1}.get(name[index], 0)
        if depth == 0:
            return name[:index] + "(" + ELLIPSIS + ")" if index > 0 else name
    return name


def _collisions(short: dict[str, str]) -> list[list[str]]:
    """Groups of names whose short forms are equal (a name kept whole counts too)."""
    by_form: dict[str, list[str]] = defaultdict(list)
    for name, form in short.items():
        by_form[form].append(name)
    return [group for group in by_form.values() if len(group) > 1]


def _common_prefix(first: str, second: str) -> int:
    length = min(len(first), len(second))
    return next((i for i in range(length) if first[i] != second[i]), length)


def _around_difference(name: str, others: list[str], width: int) -> str:
    """`name` shortened to its head and the window where it first differs from the nearest of `others`."""
    if len(name) <= width or not others:
        return name if len(name) <= width else abbreviate(name, width)
    differs_at = max(_common_prefix(name, other) for other in others)
    head = width // 3
    start = max(head, differs_at - CONTEXT)
    if start == head:  # the difference is within reach of the head: one piece from the start
        return name[: width - 1] + ELLIPSIS
    window = width - head - 2
    ending = ELLIPSIS if start + window < len(name) else ""
    piece = name[start : start + window + (0 if ending else 1)]
    return name[:head] + ELLIPSIS + piece + ending


def _tagged(name: str, width: int, tag_length: int) -> str:
    """`name` cut to fit `width` with `…#<tag>` from a hash of the whole name."""
    tag = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:tag_length]
    return name[: width - tag_length - 2] + ELLIPSIS + "#" + tag

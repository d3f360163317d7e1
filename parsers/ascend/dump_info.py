"""What a dump says about itself: rank, versions, configuration (profiler_info_N.json,
profiler_metadata.json, msprof info.json)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..filekind import read_regular
from ..model import MAX_RANK
from ..redact import redact
from .layout import Sources

# A dump's own description is a few KB; anything past these is not one.
MAX_INFO_BYTES = 16 << 20
MAX_INFO_DEPTH = 64


def _load_json(path: Path | None, warnings: list[str]) -> dict:
    if path is None:
        return {}
    try:
        raw = read_regular(path, MAX_INFO_BYTES)
    except OSError as exc:
        warnings.append(f"{path.name} cannot be read ({exc.strerror or exc}); ignored")
        return {}
    except ValueError as exc:  # not a regular file, or too large
        warnings.append(f"{exc}; ignored")
        return {}
    try:
        value = json.loads(raw.decode("utf-8", errors="replace"))
    except RecursionError:
        value = None
    except ValueError as exc:
        warnings.append(f"{path.name} is not valid JSON ({str(exc)[:80]}); ignored")
        return {}
    if value is None or _depth(value) > MAX_INFO_DEPTH:
        warnings.append(f"{path.name} is nested more than {MAX_INFO_DEPTH} levels deep; ignored")
        return {}
    if not isinstance(value, dict):
        warnings.append(f"{path.name} is not a JSON object; ignored")
        return {}
    return value


def _depth(value: object) -> int:
    """How deeply lists and objects nest in a parsed JSON value (without recursion)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if level + 1 > MAX_INFO_DEPTH:
                    return level + 1
                stack.append((child, level + 1))
        deepest = max(deepest, level)
    return deepest


_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,19}")
_UNSET = -1  # what torch_npu writes for `rank_id` outside a distributed run


def _int(value: object) -> int | None:
    """A whole number written as a JSON integer or as digits; None otherwise."""
    if isinstance(value, bool):
        return None
    text = str(value).strip() if isinstance(value, (int, str)) else ""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


def _rank(value: object, source: str, warnings: list[str]) -> int | None:
    """A rank in 0..MAX_RANK, or None; a value that is present but no rank is warned about."""
    number = _int(value)
    if number is not None and 0 <= number <= MAX_RANK:
        return number
    if value is not None and number != _UNSET and value != "":
        warnings.append(f"{source} {str(value)[:40]!r} is not a rank (a whole number from 0 to {MAX_RANK}); ignored")
    return None


def _object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def dump_info(sources: Sources, rank_hint: int | None, warnings: list[str]) -> tuple[dict, list[tuple]]:
    """The trace-level info (rank, world size, versions) and metadata rows of a unit."""
    info_json = _load_json(sources.profiler_info, warnings)
    meta_json = _load_json(sources.profiler_metadata, warnings)
    rows: list[tuple] = []
    if info_json:
        rows.append(("trace", None, None, "profiler_info", json.dumps(redact(info_json), sort_keys=True)))
    for key, value in meta_json.items():
        kind = "distributed" if key in ("distributed_args", "parallel_group_info") else "trace"
        rows.append((kind, None, None, key, json.dumps(redact(value, key), sort_keys=True)))
    for path in sources.msprof_meta:
        value = _load_json(path, warnings)
        if value:
            rows.append(("trace", None, None, path.name, json.dumps(redact(value), sort_keys=True)))
    dist = _object(meta_json.get("distributed_args"))
    experimental = _object(_object(info_json.get("config")).get("experimental_config"))
    versions = {
        k: info_json[k] for k in ("torch_npu_version", "cann_version") if isinstance(info_json.get(k), (str, int))
    }
    if isinstance(level := experimental.get("_profiler_level"), (str, int)) and level:
        versions["profiler_level"] = level
    info_name = sources.profiler_info.name if sources.profiler_info else "profiler_info"
    rank = _rank(info_json.get("rank_id"), f"{info_name}: rank_id", warnings)
    if rank is None:
        rank = _rank(dist.get("rank"), "profiler_metadata.json: distributed_args.rank", warnings)
    if rank_hint is not None and not 0 <= rank_hint <= MAX_RANK:
        rank_hint = None
    world_size = _int(dist.get("world_size"))
    info: dict[str, Any] = {
        "rank": rank if rank is not None else (rank_hint or 0),
        "rank_known": rank is not None,
        "world_size": world_size if world_size is not None and 0 < world_size <= MAX_RANK else None,
        "host": None,
        "device_names": [],
        "tool_versions": versions,
        "base_time_ns": 0,
    }
    return info, rows


def finish_info(info: dict, fmt: str) -> dict:
    """Fill the fields the store reads and serialise the versions."""
    info = dict(info)
    info.pop("rank_known", None)
    info["format"] = fmt
    info["tool_versions"] = json.dumps(info.get("tool_versions") or {}, sort_keys=True)
    return info

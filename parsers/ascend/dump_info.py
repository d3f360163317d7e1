"""What a dump says about itself: rank, versions, configuration (profiler_info_N.json,
profiler_metadata.json, msprof info.json)."""

from __future__ import annotations

import json
from pathlib import Path

from parsers.ascend.layout import Sources
from parsers.redact import redact


def _load_json(path: Path | None, warnings: list[str]) -> dict:
    if path is None:
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        warnings.append(f"{path.name} is not valid JSON ({str(exc)[:80]}); ignored")
        return {}
    if not isinstance(value, dict):
        warnings.append(f"{path.name} is not a JSON object; ignored")
        return {}
    return value


def _int(value: object) -> int | None:
    text = str(value).strip() if value is not None else ""
    return int(text) if text.lstrip("-").isdigit() else None


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
    dist = meta_json.get("distributed_args") if isinstance(meta_json.get("distributed_args"), dict) else {}
    experimental = (info_json.get("config") or {}).get("experimental_config") or {}
    versions = {
        k: info_json[k] for k in ("torch_npu_version", "cann_version") if isinstance(info_json.get(k), (str, int))
    }
    if experimental.get("_profiler_level"):
        versions["profiler_level"] = experimental["_profiler_level"]
    rank = _int(info_json.get("rank_id"))
    if rank is None or rank < 0:
        rank = _int(dist.get("rank"))
    info = {
        "rank": rank if rank is not None and rank >= 0 else (rank_hint or 0),
        "rank_known": rank is not None and rank >= 0,
        "world_size": _int(dist.get("world_size")),
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

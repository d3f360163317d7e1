"""Write a run's files deterministically: fixed key order, no clock, gzip with mtime 0."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from .ascend import ascend_files
from .kineto import kineto_text
from .spec import RunSpec
from .timeline import simulate
from .truth import build_truth


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with no file name and mtime 0, so equal input gives equal output."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=6, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _write(path: Path, text: str, compress: bool) -> Path:
    data = text.encode("utf-8")
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip_bytes(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def generate(spec: RunSpec, out_dir: Path, compress: bool = False) -> list[Path]:
    """Simulate `spec` and write its traces and `truth.json` under `out_dir`."""
    out_dir = Path(out_dir)
    run = simulate(spec)
    written: list[Path] = []
    for fmt in spec.resolved_formats():
        if fmt == "kineto":
            name = f"{spec.name}.pt.trace.json"
            written.append(_write(out_dir / name, kineto_text(run, name), compress))
        elif fmt == "ascend":
            root = out_dir / f"{spec.name}_ascend_pt"
            for rel, text in ascend_files(run).items():
                written.append(_write(root / rel, text, compress))
        else:
            raise ValueError(f"unknown format {fmt!r} (expected kineto or ascend)")
    files = sorted(p.relative_to(out_dir).as_posix() for p in written)
    truth = build_truth(run, files)
    truth_path = out_dir / "truth.json"
    truth_path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return [*written, truth_path]

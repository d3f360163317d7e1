"""`make demo`: ingest a bundled sample trace, answer a few questions, say where the output is."""

from __future__ import annotations

import sys
from pathlib import Path

from traceview.commands.query import OutputFormat, render
from traceview.engine import Session, connect
from traceview.store import ingest, manifest_warnings

SAMPLES = Path(__file__).resolve().parents[1] / "sample_traces"
DEMO_SAMPLES = (
    "real_cpu/tiny_decoder_cpu.pt.trace.json.gz",
    "h200_long_context/kineto_trace.json.gz",
)

QUESTIONS = {
    "What the trace holds (slices by kind and device)": (
        "SELECT kind, device_type, count(*) AS slices, sum(dur_ns) AS total_ns FROM slices GROUP BY ALL ORDER BY 4 DESC"
    ),
    "Top operators by host self time": (
        "SELECT name, count(*) AS calls, sum(self_ns) AS self_ns, sum(dur_ns) AS total_ns FROM ops"
        " GROUP BY name ORDER BY self_ns DESC LIMIT 8"
    ),
    "Steps and their duration": (
        "SELECT name, ts_ns, dur_ns FROM annotations WHERE kind = 'step' ORDER BY ts_ns LIMIT 12"
    ),
}


def sample_path() -> Path:
    """The first bundled sample that exists."""
    for relative in DEMO_SAMPLES:
        if (SAMPLES / relative).is_file():
            return SAMPLES / relative
    raise SystemExit(f"no bundled sample found under {SAMPLES}")


def main(out_dir: Path) -> None:
    """Ingest the sample into OUT_DIR/sample.traceview and print the answers."""
    sample = sample_path()
    result = ingest([sample], out_dir / "sample.traceview", force=True)
    for line in manifest_warnings(result.store, result.manifest):
        print(f"Warning: {line}", file=sys.stderr)
    session = Session(result.store, connect(result.store))
    with session:
        for title, sql in QUESTIONS.items():
            print(f"\n== {title}\n")
            print(render(session.sql(sql), OutputFormat.table), end="")
    print(f"\nIngested {sample.relative_to(SAMPLES.parent)}")
    print(f"Output: {result.store}  (Parquet tables + manifest.json)")
    print(f'Try:    .venv/bin/traceview query {result.store} "select * from kernels limit 5"')


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output"))

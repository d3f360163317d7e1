"""`make demo`: ingest a bundled sample, analyse it, write the reports, say where they are."""

from __future__ import annotations

import sys
from pathlib import Path

from traceview.analysis.analyze import run_analyze
from traceview.atomic import write_text_atomic
from traceview.commands.query import OutputFormat, render
from traceview.engine import Session, connect
from traceview.reports.html import to_html
from traceview.reports.json_report import to_json
from traceview.reports.terminal import render as render_report
from traceview.store import ingest, manifest_warnings

# Shipped in the wheel as package data (in the repository a link to sample_traces/longctx_h200).
DEMO_SAMPLE = Path(__file__).resolve().parent / "demo_sample" / "longctx_h200.pt.trace.json.gz"

QUESTION = (
    "SELECT kind, device_type, count(*) AS slices, sum(dur_ns) AS total_ns FROM slices GROUP BY ALL ORDER BY 4 DESC"
)


def main(out_dir: Path) -> None:
    """Ingest the H200-like serving sample into OUT_DIR, analyse it, write report.html and report.json."""
    if not DEMO_SAMPLE.is_file():
        raise SystemExit(f"bundled sample missing: {DEMO_SAMPLE}")
    result = ingest([DEMO_SAMPLE], out_dir / "sample.traceview", force=True)
    for line in manifest_warnings(result.store, result.manifest):
        print(f"Warning: {line}", file=sys.stderr)
    with Session(result.store, connect(result.store)) as session:
        print("== What the trace holds (SQL over the store)\n")
        print(render(session.sql(QUESTION), OutputFormat.table))
    report = run_analyze([result.store], sections=True)
    print(render_report(report, width=140), end="")
    write_text_atomic(out_dir / "report.html", to_html(report))
    write_text_atomic(out_dir / "report.json", to_json(report))
    print(f"\nSample:  {DEMO_SAMPLE.name} (an H200-like vLLM serving run: sample_traces/README.md in the repository)")
    print(f"Store:   {result.store}  (Parquet tables + manifest.json)")
    print(f"Reports: {out_dir / 'report.html'} (open in a browser, works offline), {out_dir / 'report.json'}")
    print(f'Try:     traceview query {result.store} "select name, sum(dur_ns) from kernels group by 1"')


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-output"))

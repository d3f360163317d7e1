"""The JSON report: `{"traces": [...], "findings": [...], "results": {"<query>": [rows]}}`."""

from __future__ import annotations

from traceview import jsonify
from traceview.commands.analyze import AnalysisReport


def to_json(report: AnalysisReport) -> str:
    """Serialise a report (traceview.jsonify: exact integers and decimals, NaN and infinities as null)."""
    document = {
        "traceview_version": report.traceview_version,
        "traces": report.traces,
        "findings": [
            {"query": f.query, "severity": f.severity, "message": f.message, "row": f.row} for f in report.findings
        ],
        "errors": report.errors,
        "results": {r.query.name: (r.frame.to_dicts() if r.frame is not None else None) for r in report.results},
    }
    return jsonify.dumps(document, indent=True)

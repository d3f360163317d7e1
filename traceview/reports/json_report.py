"""The JSON report: `{"traces": [...], "findings": [...], "results": {"<query>": [rows]}}`."""

from __future__ import annotations

import json

from traceview.commands.analyze import AnalysisReport
from traceview.jsonify import json_default


def to_json(report: AnalysisReport) -> str:
    """Serialise a report; row values keep their exact integers."""
    document = {
        "traceview_version": report.traceview_version,
        "traces": report.traces,
        "findings": [
            {"query": f.query, "severity": f.severity, "message": f.message, "row": f.row} for f in report.findings
        ],
        "errors": report.errors,
        "results": {r.query.name: (r.frame.to_dicts() if r.frame is not None else None) for r in report.results},
    }
    return json.dumps(document, default=json_default, ensure_ascii=False, indent=1) + "\n"

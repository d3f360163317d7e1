"""The JSON report: `{"traces": [...], "findings": [...], "results": {"<query>": [rows]}}`."""

from __future__ import annotations

from traceview import jsonify
from traceview.analysis.report import AnalysisReport


def to_json(report: AnalysisReport) -> str:
    """Serialise a report (traceview.jsonify: exact integers and decimals, NaN and infinities as null)."""
    return jsonify.dumps(report.to_json(), indent=True)

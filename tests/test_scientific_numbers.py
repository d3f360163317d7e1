"""Numbers written in scientific notation (`1.69512E+15`, as a spreadsheet re-saves a CSV) are read exactly or
refused with a warning carrying counts (issue 20, item 8)."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from ascend_support import ASCEND, query

from traceview.analysis.analyze import run_analyze
from traceview.parsers.ascend.csv_util import exact_positional
from traceview.store import ingest

HEADER = "Component,Timestamp(us),Total Allocated(MB),Total Reserved(MB),Device Type"


@pytest.mark.parametrize(
    ("text", "multiplier", "expected"),
    [
        ("1.69512E+15", 1000, "1695120000000000"),
        ("1.69512E+15\t", 1000, "1695120000000000"),
        ("1.736408883704643212E+15", 1000, "1736408883704643.212"),
        ("1.5e-1", 1000, "0.15"),
        ("1.5e-3", 1000, None),  # 1.5 ns
        ("9.5367431640625E-7", 1048576, "0.00000095367431640625"),  # one byte, in MB
        ("1.6951153786533235123E+15", 1000, None),  # a tenth of a ns
        ("1.5E-4", 1000, None),
        ("4.59974E+03", 1048576, None),  # 4823037214.72 bytes
        ("1E+400", 1, None),
        ("1" * 50 + "E+0", 1, None),
        ("infE", 1, None),
    ],
)
def test_exact_positional(text: str, multiplier: int, expected: str | None) -> None:
    assert exact_positional(text, multiplier) == expected


def _dump(tmp: Path, rows: list[str]) -> Path:
    """A torch_npu rank dump with a memory_record.csv of the ≤2023 form (as the corpus's test_rank_0), CRLF."""
    dump = tmp / "host_1_20250101_ascend_pt"
    out = dump / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (dump / "profiler_info_0.json").write_text(json.dumps({"config": {}, "rank_id": 0}))
    (out / "memory_record.csv").write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode())
    return dump


def test_scientific_timestamps_are_exact_or_refused(tmp_path: Path) -> None:
    rows = [
        "PTA,1695115378714622.8,4599.74072265625,8664.0,NPU:0",
        "PTA,1.69512E+15\t,4599.740234375,8664.0,NPU:0",
        "PTA+GE,1.69512E+15,4599.740234375,8664.0,NPU:0",
        "GE,1.6951153786533235123E+15,0.25,242.0,NPU:0",
        "GE,1695115379004557.2,4.59974E+03,242.0,NPU:0",
    ]
    result = ingest([_dump(tmp_path, rows)], tmp_path / "s.traceview")
    memory = query(result.store, "SELECT pid, ts_ns, total_allocated FROM memory ORDER BY ts_ns, pid")
    assert memory == [
        ("PTA", 1695115378714622800, 4823177728),  # 4599.74072265625 MB
        ("GE", 1695115379004557200, None),
        ("PTA", 1695120000000000000, 4823177216),  # 4599.740234375 MB
        ("PTA+GE", 1695120000000000000, 4823177216),
    ]
    warnings = [w.split(": ", 1)[1] for w in result.warnings if "scientific notation" in w]
    assert warnings == [
        "memory_record.csv: 2 Timestamp(us) values in scientific notation (e.g. 1.69512E+15) read exactly as"
        " written; a spreadsheet that wrote them may have rounded them",
        "memory_record.csv: 1 Timestamp(us) values in scientific notation refused (e.g. 1.6951153786533235123E+15:"
        " not a whole number of ns); read as missing",
        "memory_record.csv: 1 Total Allocated(MB) values in scientific notation refused (e.g. 4.59974E+03:"
        " not a whole number of bytes); read as missing",
    ]


def test_memory_timeline_over_months_does_not_overflow(tmp_path: Path) -> None:
    """`2E+15` µs is four years after `1.69512E+15`: (ts - t0) * max_points no longer fits an int64."""
    rows = ["PTA,1.69512E+15,1.0,2.0,NPU:0", "PTA,1695120000000000.5,3.0,4.0,NPU:0", "PTA,2E+15,5.0,6.0,NPU:0"]
    report = run_analyze([_dump(tmp_path, rows)], cache_dir=tmp_path / "cache")
    result = report.result("memory_timeline")
    assert result is not None and result.error is None and result.frame is not None
    assert result.frame.select("ts_ns", "total_allocated").rows() == [
        (1695120000000000000, 3 << 20),  # the first two share the first of 1500 buckets
        (2000000000000000000, 5 << 20),
    ]


def test_corpus_memory_record_resaved_in_scientific_notation(tmp_path: Path) -> None:
    """The corpus's real memory_record.csv with every timestamp as a spreadsheet writes it (6 digits): each
    row is kept, at exactly the time its text says."""
    source = ASCEND / "msinsight_server" / "test_rank_0" / "ASCEND_PROFILER_OUTPUT" / "memory_record.csv"
    table = list(csv.reader(io.StringIO(source.read_text())))
    for row in table[1:]:
        row[1] = f"{Decimal(row[1]):.5E}"
    dump = _dump(tmp_path, [",".join(row) for row in table[1:]])
    result = ingest([dump], tmp_path / "s.traceview")
    expected = sorted(int(Decimal(row[1]) * 1000) for row in table[1:])
    assert [ts for (ts,) in query(result.store, "SELECT ts_ns FROM memory ORDER BY ts_ns")] == expected
    assert any(f"{len(expected)} Timestamp(us) values in scientific notation" in w for w in result.warnings)

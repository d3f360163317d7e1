"""The cluster view as text: the tables the terminal summary and the HTML page share, and the terminal summary.

Numbers are shown in ms, GB/s and % (the JSON keeps ns, bytes and B/s); rows are capped (`ROWS`), the rest is
counted and left to --json.
"""

from __future__ import annotations

from traceview.analysis.cluster import ClusterResult

ROWS = 10
"""Rows per table in the terminal summary."""


def _ms(ns: object) -> str:
    return "-" if not isinstance(ns, int | float) else f"{ns / 1e6:.3f}"


def _num(value: object, spec: str = ".1f") -> str:
    return "-" if not isinstance(value, int | float) else format(value, spec)


def _gbps(bytes_per_s: object) -> float | None:
    return bytes_per_s / 1e9 if isinstance(bytes_per_s, int | float) else None


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


STRAGGLER_HEAD = ("step", "op", "seq", "last rank", "late ms", "others waited ms", "ranks", "name")
RANK_HEAD = ("rank", "steps", "median step ms", "compute ms", "comm ms", "wait ms", "host ms", "last",
             "work vs median", "slow")  # fmt: skip
LINK_HEAD = ("src", "dst", "transport", "op", "MB", "transit ms", "GB/s", "% of median", "slow")
BANDWIDTH_HEAD = ("op", "size", "calls", "algbw GB/s", "busbw GB/s", "peak GB/s", "% of peak", "flag")
OVERLAP_HEAD = ("rank", "step", "comm ms", "hidden ms", "exposed ms", "exposed %")


def straggler_rows(result: ClusterResult) -> list[tuple[str, ...]]:
    """The straggling collectives, latest first."""
    return [
        (_text(r["step"]), r["op"], _text(r["seq"]), _text(r["last_rank"]), _ms(r["lateness_ns"]), _ms(r["wait_ns"]),
         _text(r["ranks"]), _text(r["name"]))
        for r in result.stragglers
    ]  # fmt: skip


def rank_rows(result: ClusterResult) -> list[tuple[str, ...]]:
    """Every rank: its step, compute, communication, wait and host time, slow ones first."""
    rows = sorted(result.results.get("slow_rank", []), key=lambda r: (not r["slow"], r["rank"]))
    return [
        (_text(r["rank"]), _text(r["steps"]), _ms(r["median_step_ns"]), _ms(r["compute_ns"]), _ms(r["comm_ns"]),
         _ms(r["wait_ns"]), _ms(r["host_ns"]), _text(r["times_last"]),
         "-" if r["work_excess_pct"] is None else f"{r['work_excess_pct']:+.1f}%",
         f"yes ({r['cause']})" if r["slow"] else "")
        for r in rows
    ]  # fmt: skip


def link_rows(result: ClusterResult) -> list[tuple[str, ...]]:
    """Every link's totals, slowest against its transport's median first."""
    rows = sorted(result.links, key=lambda r: (r["ratio_pct"] is None, r["ratio_pct"] or 0.0))
    return [
        (_text(r["src_rank"]), _text(r["dst_rank"]), _text(r["transport"]), _text(r["op"]),
         _num((r["bytes"] or 0) / 1e6), _ms(r["transit_ns"]), _num(r["bandwidth_gbps"], ".2f"),
         _num(r["ratio_pct"], ".0f"), "yes" if r["slow"] else "")
        for r in rows
    ]  # fmt: skip


def bandwidth_rows(result: ClusterResult) -> list[tuple[str, ...]]:
    """Bus bandwidth per op and message size."""
    return [
        (r["op"], r["bucket_label"], _text(r["calls"]), _num(_gbps(r["algbw_bytes_per_s"]), ".2f"),
         _num(_gbps(r["busbw_bytes_per_s"]), ".2f"), _num(_gbps(r["peak_bytes_per_s"]), ".0f"),
         _num(r["utilization_pct"]),
         "far below peak" if r["far_below_peak"] else "latency-bound" if r["latency_bound"] else "")
        for r in result.results.get("comm_bandwidth", [])
    ]  # fmt: skip


def overlap_rows(result: ClusterResult) -> list[tuple[str, ...]]:
    """Communication per rank and step, the most exposed first."""
    rows = sorted(result.results.get("comm_overlap", []), key=lambda r: -(r["exposed_ns"] or 0))
    return [
        (_text(r["rank"]), _text(r["step"]), _ms(r["comm_ns"]), _ms(r["hidden_ns"]), _ms(r["exposed_ns"]),
         _num(r["exposed_pct"]))
        for r in rows
    ]  # fmt: skip


def _aligned(head: tuple[str, ...], rows: list[tuple[str, ...]], limit: int) -> list[str]:
    shown = [head, *rows[:limit]]
    widths = [max(len(row[i]) for row in shown) for i in range(len(head))]
    lines = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in shown]
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more rows (all in --json)")
    return lines


def summary(result: ClusterResult, limit: int = ROWS) -> list[str]:
    """The terminal summary: ranks, findings, then each table (at most `limit` rows)."""
    ranks = result.ranks
    lines = [f"cluster: {len(ranks)} ranks ({ranks[0]}..{ranks[-1]}), {result.calls.height} collective calls"]
    if result.quality:
        lines.append(f"Data quality ({len(result.quality)})")
        lines += [f"  {note.kind}: {note.message}" for note in result.quality]
    else:
        lines.append("Data quality: no ingest warnings")
    lines.append(f"Findings ({len(result.findings)})")
    lines += [f"  {f['severity']}: {f['query']}: {f['message']}" for f in result.findings[:limit]]
    if len(result.findings) > limit:
        lines.append(f"  ... {len(result.findings) - limit} more findings (all in --json)")
    lines += [f"error: {error}" for error in result.errors]
    for title, head, rows, empty in (
        ("Stragglers (collective_skew)", STRAGGLER_HEAD, straggler_rows(result), "no rank came late to a collective"),
        ("Ranks (slow_rank)", RANK_HEAD, rank_rows(result), "no rank with profiler steps"),
        ("Links (slow_link)", LINK_HEAD, link_rows(result), "no per-link traffic recorded"),
        ("Bus bandwidth (comm_bandwidth)", BANDWIDTH_HEAD, bandwidth_rows(result), "no collective with a known size"),
        ("Communication overlap (comm_overlap)", OVERLAP_HEAD, overlap_rows(result), "no communication on a device"),
    ):
        lines.append(f"{title}: {empty}" if not rows else f"{title}")
        if rows:
            lines += _aligned(head, rows, limit)
    return lines

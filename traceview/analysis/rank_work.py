"""A pack run split between rank tasks and the driver (`analyze --ray`, `cluster --ray`).

A `RankRunner` (`traceview.ray_engine.submit_rank_work`) runs, over batches of ranks, the pack's queries of scope
`rank` and builds the per-rank relations (`RANK_RELATIONS`), returning their rows; meanwhile the driver runs the
other queries that do not read those relations, then, once the rows are back, the ones that do, over the gathered
table. Where the per-rank relations cannot be split by rank (several stores, two traces of one rank) or a task
failed to build them, the driver builds them itself. The results equal those of one `run_pack` over the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from traceview.packs import Pack, Query, SharedRelation, needed_by, with_shared
from traceview.sandbox import PackRun, QueryResult, SharedResult, run_pack, with_findings
from traceview.store import read_manifest

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

RANK_RELATIONS = ("busy_rows", "rank_busy")
"""The core pack's shared relations that are per rank (every rank's device-time sweep, and its split per rank and
step): built by the rank tasks, which need `busy_rows` for busy_breakdown anyway; `GATHERED` comes back."""
GATHERED = "rank_busy"
MIN_BATCH_RANKS = 2
"""The least ranks of a batch that builds `GATHERED` (it is empty for fewer than two ranks)."""

RankRows = tuple["pa.Table | None", str | None, float]
"""One query's or relation's outcome over some ranks or gathered: its rows as Arrow, or its error; the seconds."""
Collect = Callable[[], tuple[list[RankRows], list[RankRows]]]
"""Waits for the rank tasks: the rows of each query of the pack given, then of each relation asked for."""
RankRunner = Callable[[list[tuple[Path, str]], Pack, list[str], dict, float, int], Collect]
"""`(traces, pack, gathered, overrides, limit_s, min_batch)`: starts the pack's queries and the shared relations
named in `gathered` over batches of at least `min_batch` traces `(store, trace_id)` and returns at once; the
`Collect` it returns gathers each one's rows in trace_id order, the order the queries give."""


def ranks_of(stores: list[Path]) -> list[tuple[Path, str]]:
    """Every trace of the stores as `(store, trace_id)`, in trace_id order (the order rank-scoped queries give)."""
    return sorted(
        ((store, item["trace_id"]) for store in stores for item in read_manifest(store).get("inputs", [])),
        key=lambda pair: pair[1],
    )


class SplitRun:
    """A pack run whose rank tasks are started on creation; `finish` runs the driver's part and gathers them, so
    that the caller may do other work between the two."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        pack: Pack,
        stores: list[Path],
        runner: RankRunner,
        overrides: dict,
        limit_s: float,
    ) -> None:
        self.con, self.pack, self.overrides, self.limit_s = con, pack, overrides, limit_s
        self.per_rank = [q for q in pack.queries if q.scope == "rank"]
        self.here = [q for q in pack.queries if q.scope != "rank"]
        self.split = _splittable_relations(con, pack, self.here, stores)
        self.collect: Collect | None = None
        if self.per_rank or self.split:
            stripped = [replace(query, findings=[]) for query in self.per_rank]
            task_pack = needed_by(pack, stripped, tuple(r.name for r in self.split))
            gathered = [GATHERED] if self.split else []
            least = MIN_BATCH_RANKS if self.split else 1
            self.collect = runner(ranks_of(stores), task_pack, gathered, overrides, limit_s, least)

    def finish(self) -> PackRun:
        """The driver's queries (those that do not read the per-rank relations while the tasks run), the tasks' rows,
        then the queries that read them: results in the pack's order; the shared results' tables stay until
        `drop_shared`."""
        con, pack, overrides, limit_s, split = self.con, self.pack, self.overrides, self.limit_s, self.split
        if self.collect is None:
            return run_pack(con, pack, pack.queries, overrides, limit_s)
        reads_split = [q for q in self.here if split and split[-1].definition in q.sql]
        first = [q for q in self.here if q not in reads_split]
        driver_pack = needed_by(replace(pack, shared=[r for r in pack.shared if r not in split]), self.here)
        run_first = run_pack(con, driver_pack, first, overrides, limit_s)
        query_rows, relation_rows = self.collect()
        done: dict[int, QueryResult] = dict(zip(map(id, first), run_first.results, strict=True))
        for query, rows in zip(self.per_rank, query_rows, strict=True):
            done[id(query)] = _with_findings(con, query, rows, limit_s)
        shared = list(run_first.shared)
        if reads_split:
            later, built = _run_reading_split(
                con, pack, reads_split, split, relation_rows[0], run_first, overrides, limit_s
            )
            done.update(zip(map(id, reads_split), later, strict=True))
            shared += built
        return PackRun(shared=shared, results=[done[id(q)] for q in pack.queries])


def _splittable_relations(
    con: duckdb.DuckDBPyConnection, pack: Pack, here: list[Query], stores: list[Path]
) -> list[SharedRelation]:
    """The per-rank relations (`RANK_RELATIONS`, in the pack's order) when a query run here reads them and they can
    be built per batch of ranks: one store, one trace per rank; none otherwise."""
    split = [r for r in pack.shared if r.name in RANK_RELATIONS]
    if len(split) != len(RANK_RELATIONS) or split[-1].name != GATHERED or len(stores) != 1:
        return []
    if not any(split[-1].definition in q.sql for q in here):
        return []
    ranks = [row[0] for row in con.sql("SELECT rank FROM traces").fetchall()]
    return split if len(set(ranks)) == len(ranks) else []


def _run_reading_split(
    con: duckdb.DuckDBPyConnection,
    pack: Pack,
    queries: list[Query],
    split: list[SharedRelation],
    rows: RankRows,
    run_first: PackRun,
    overrides: dict,
    limit_s: float,
) -> tuple[list[QueryResult], list[SharedResult]]:
    """The queries that read the per-rank relations, over the gathered table (or, when the tasks could not build
    it, over relations built here), reading what the first run built from its tables."""
    table, error, seconds = rows
    ready = [result.relation for result in run_first.shared if result.error is None]
    if error is None and table is not None:
        gathered = split[-1]
        con.from_arrow(table).create(gathered.table)
        built = [SharedResult(gathered, table.num_rows, seconds)]
        ready.append(gathered)
        left = replace(pack, shared=[])
    else:  # the driver builds them, and reports an error as its own run would
        built = []
        left = replace(pack, shared=split)
    rewritten = [replace(query, sql=with_shared(query.sql, ready)) for query in queries]
    run = run_pack(con, left, rewritten, overrides, limit_s)
    results = [replace(result, query=query) for query, result in zip(queries, run.results, strict=True)]
    return results, built + run.shared


def _with_findings(con: Any, query: Query, rows: RankRows, limit_s: float) -> QueryResult:
    """A rank-scoped query's result from its gathered rows: its findings computed here, over all ranks' rows."""
    import polars as pl

    table, error, seconds = rows
    if error is not None:
        return QueryResult(query, None, error=error, seconds=seconds)
    return with_findings(con, query, cast(pl.DataFrame, pl.from_arrow(table)), limit_s, seconds)

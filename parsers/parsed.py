"""What a parser hands to the application: trace info plus Arrow tables of the model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa


@dataclass
class ParsedTrace:
    """One parsed trace file (or rank).

    `tables` maps a model table name to an Arrow RecordBatchReader that streams its rows;
    `info` holds the fields of the `traces` row that only the parser knows. Call `close()`
    once the readers have been consumed.
    """

    info: dict
    tables: dict[str, pa.RecordBatchReader]
    warnings: list[str] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Release the parser's resources (database handles, scratch files)."""
        for closer in self._closers:
            closer()
        self._closers.clear()

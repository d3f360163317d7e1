"""The kernel family rule set for the Python analyses.

The rules live in one place, the core pack's `_family_rules.sql` fragment (included by `kernel_families.sql`);
`traceview throughput` (its kernel mix) and `traceview diff --by family` run the same fragment through DuckDB
instead of restating it, so the three agree on every task's family.
"""

from __future__ import annotations

from functools import cache

from traceview.packs import find_pack, fragment_sql

FAMILY_FRAGMENT = "_family_rules.sql"


@cache
def family_ctes() -> str:
    """`family_rules AS (...), task_families AS (...)`, to follow a WITH: `task_families(kind, name, family)` has
    one row per distinct (kind, name) of `device_tasks`, with the family of the first rule that matches it."""
    return fragment_sql(find_pack("core"), FAMILY_FRAGMENT)

"""Counter samples (`C` events) as rows of the `counters` table, with their unit.

A counter event's args hold one or more series: `{"Read(MB/s)": 1.5}`, `{"KB": 2160232}`,
`{"Hit Rate(%)": 0.89}`, `{"read (GB/s)": 1200, "write (GB/s)": 300}`. Each series becomes a row.

The unit is read from the series key or the counter name: a trailing `(...)` (`Read(MB/s)`,
`Hit Rate(%)`, `HBM bandwidth (GB/s)`), or the key itself when it is a unit (`KB`, `MHz`, `W`).
Byte amounts and byte rates are normalised to `bytes` and `bytes/s`, their values scaled to match;
`%` stays `%`; other units are kept as written; no unit is NULL. Only `bytes/s` is a bandwidth:
SQL selects bandwidth counters by `unit = 'bytes/s'`, never by name.

Keys that name an id (`acc_id`, `id`, `deviceId`) with an integer value are not series: where an
event has other keys too (Ascend `Acc PMU`: `{"acc_id": 3, "value": 0}`), the id qualifies the
series name of the others (`value acc_id=3`) instead of being read as a sample.
"""

from __future__ import annotations

# A key naming an id: `id`, `acc_id`, `device id`, `accId`.
_ID_KEY = r"(^|[ _.])([iI][dD])$|[a-z0-9]Id$"
_TRAILING_UNIT = r"\(\s*([^()]*?)\s*\)\s*$"
_BYTE_UNIT = r"^([kmgtp]?)(i?)(b|byte|bytes)$"
_BYTE_RATE = r"^([kmgtp]?)(i?)(b|byte|bytes)(/s|/sec|ps)$"
_BYTE_ANY = r"^([kmgtp]?)(i?)(b|byte|bytes)(/s|/sec|ps)?$"
# A key that is nothing but a unit (`{"KB": 2160232}`, `{"MHz": 1800}`, `{"W": 500}`), matched as written:
# `b` or `s` alone are as likely series names as units.
_BARE_UNIT = r"^(([kKMGTP]i?)?B|[Bb]ytes)(/s)?$|^[kMG]?Hz$|^[mk]?W$|^%$"


def _token_sql(name: str, key: str) -> str:
    """The unit text of a series: `(...)` at the end of its key, else of the counter name, else the key."""
    return (
        f"coalesce(nullif(regexp_extract({key}, '{_TRAILING_UNIT}', 1), ''),"
        f" nullif(regexp_extract({name}, '{_TRAILING_UNIT}', 1), ''),"
        f" CASE WHEN regexp_matches(trim({key}), '{_BARE_UNIT}') THEN trim({key}) END)"
    )


def _unit_sql(token: str) -> str:
    low = f"lower({token})"
    return (
        f"CASE WHEN regexp_matches({low}, '{_BYTE_RATE}') THEN 'bytes/s'"
        f" WHEN regexp_matches({low}, '{_BYTE_UNIT}') THEN 'bytes'"
        f" WHEN {low} IN ('%', 'percent') THEN '%'"
        f" ELSE {token} END"
    )


def _scale_sql(token: str, binary: bool) -> str:
    """Bytes per unit of a byte amount or rate (1 for other units). `binary`: K/M/G are powers of 1024,
    as Ascend writes them; else of 1000, except KiB/MiB/GiB."""
    low = f"lower({token})"
    prefix = f"regexp_extract({low}, '{_BYTE_ANY}', 1)"
    iec = f"regexp_extract({low}, '{_BYTE_ANY}', 2) = 'i'"
    base = "1024.0" if binary else f"CASE WHEN {iec} THEN 1024.0 ELSE 1000.0 END"
    power = f"CASE {prefix} WHEN 'k' THEN 1 WHEN 'm' THEN 2 WHEN 'g' THEN 3 WHEN 't' THEN 4 WHEN 'p' THEN 5 ELSE 0 END"
    return (
        f"CASE WHEN regexp_matches({low}, '{_BYTE_ANY}') THEN pow({base}, {power}) ELSE 1.0 END"
    )


def counter_rows_sql(events: str, order: str, ts_ns: str, binary: bool, unit_as_series: bool = False) -> str:
    """SELECT ts_ns, pid, name, series, value, unit: one row per series of the `C` events of `events`
    (columns ph, ts, pid, name, args (JSON), and `order`, the event order), in event order.

    `ts_ns` is the sample time in terms of `e.ts`; `binary` reads K/M/G byte prefixes as powers of 1024.
    `unit_as_series` names byte series by their unit (`bytes`, `bytes/s`), as the Ascend tables do.
    """
    series = "CASE WHEN tag IS NULL THEN key ELSE key || ' ' || tag END"
    if unit_as_series:
        series = f"CASE WHEN unit IN ('bytes', 'bytes/s') THEN unit ELSE {series} END"
    return f"""
        WITH kv AS (
          SELECT e.{order} AS ord, j.id AS pos, {ts_ns} AS ts_ns, e.pid, e.name, j.key, j.value,
                 regexp_matches(j.key, '{_ID_KEY}') AND j.type IN ('UBIGINT', 'BIGINT') AS id_like
          FROM {events} e, json_each(e.args) j
          WHERE e.ph = 'C' AND e.ts IS NOT NULL
        ), ids AS (
          SELECT ord, string_agg(key || '=' || CAST(value AS VARCHAR), ' ' ORDER BY pos) AS tag
          FROM kv WHERE id_like GROUP BY ord
        ), kept AS (
          -- an id is a value where nothing else is (`{{"id": 5}}`)
          SELECT kv.*, {_token_sql('kv.name', 'kv.key')} AS token,
                 bool_and(kv.id_like) OVER (PARTITION BY kv.ord) AS ids_only,
                 CASE WHEN NOT ids_only THEN ids.tag END AS tag
          FROM kv LEFT JOIN ids USING (ord)
        ), united AS (
          SELECT *, {_unit_sql('token')} AS unit, {_scale_sql('token', binary)} AS scale
          FROM kept WHERE NOT id_like OR ids_only
        )
        SELECT ts_ns, pid, name, {series} AS series,
               TRY_CAST(value AS DOUBLE) * scale AS value, unit
        FROM united
        ORDER BY ord, pos
    """

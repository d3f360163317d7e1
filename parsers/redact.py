"""Redaction of secrets in everything a trace puts in the store or a report.

Dumps come from the internet and from users' machines: environment dumps, command lines, log
lines, op args and kernel names can hold tokens, passwords and keys. One function, `redact_text`,
cleans a string wherever it comes from (metadata, args, names, warnings, error lines); `redact`
walks JSON-like values and also redacts by key.

What is redacted (the value only; the key, quoting and the rest of the text are kept):

* `KEY=value`, `KEY: value`, `"KEY": "value"` (JSON, also JSON escaped inside a JSON string),
  `'KEY': 'value'` and `--KEY value`, where KEY ends with a secret word: token, secret(s),
  password, passwd, passphrase, pass, pwd, auth, authorization, credential(s), cookie,
  session_id, or api/access/secret/private/client/auth/... key; with or without a separator
  (`MYTOKEN`, `GITHUBTOKEN`, `SECRETKEY`, `DBPASS`, `GPG_PASSPHRASE`);
* `Bearer <token>`, credentials in URLs (`scheme://user:<redacted>@host`), PEM private keys, and
  tokens known by their prefix (`hf_`, `ghp_`, `github_pat_`, `glpat-`, `nvapi-`, `sk-`, `xox?-`,
  `AKIA`, `AIza`) when long enough to be one (`sk-layer` stays).

What stays: counts and names that merely contain such a word (`num_tokens=128`, `max_tokens: 4096`,
`input_tokens`, `tokenizer`, `token_ids`, `passes`, `password_hash_algo` (an algorithm's name),
`PWD`/`OLDPWD` (the working directory)).

Every string that `redact_text` would change holds one of its candidate words (checked first, so
this holds by construction), and so matches `CANDIDATE_PATTERN`: callers filter millions of values
with it in RE2 (pyarrow, DuckDB, case ignored) and run `redact_text` on the matches only.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .arrownp import python_array

REDACTED = "<redacted>"

# Tokens known by their prefix (`_PREFIXED_TOKEN`), lower case.
_TOKEN_PREFIXES = (
    "hf_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "nvapi-", "sk-",
    "xoxa-", "xoxb-", "xoxp-", "xoxr-", "akia", "aiza",
)  # fmt: skip
# Every redaction below needs one of these words (in any case) in the text.
_CANDIDATE_WORDS = (
    "token", "secret", "pass", "pwd", "key", "cred", "cookie", "session", "auth", "bearer", "://", *_TOKEN_PREFIXES
)  # fmt: skip
# The same, for RE2 (pyarrow, DuckDB) with case ignored: the words hold no character special to it.
CANDIDATE_PATTERN = "|".join(_CANDIDATE_WORDS)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# The words a secret key ends with start here (found in the lowered text, then the key around them).
_KEY_ANCHOR = re.compile("token|secret|pass|pwd|auth|cred|cookie|session|key")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_KEY_REST = re.compile(r"[A-Za-z0-9_.-]*+")

# A key (or flag) is secret when it ends with a secret word, after a separator or not.
_SECRET_WORD = (
    r"(?:token|secrets?|passw(?:or)?d|passphrase|(?<!by)(?<!com)pass|pwd|auth|authorization|credentials?"
    r"|cookies?|session[_.-]?id"
    r"|(?:api|access|secret|private|client|auth|encryption|signing|master|ssh|gpg|deploy|account|app)[_.-]?key)"
    r"(?:[_.-](?:base|value|b64|base64|string|str|raw))?"
)
_SECRET_KEY = re.compile(_SECRET_WORD + "$", re.IGNORECASE)
# Look-alikes of secret keys: the working directory.
_PLAIN_KEYS = frozenset({"pwd", "oldpwd"})
# Quoted values longer than this are redacted up to it (a bound on the work per key; no secret is longer).
_MAX_VALUE = 4096

_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|(?=[\"'])|\Z)",
    re.IGNORECASE,
)
_PREFIXED_TOKEN = re.compile(
    r"(?<![A-Za-z0-9])(?:hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|glpat-[A-Za-z0-9_-]{20,}|nvapi-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9_-]{20,}|xox[abpr]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,})"
)
_BEARER = re.compile(r"\b(bearer\s++)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*+://[^\s/@:\"']++:)[^\s/@\"']++(@)", re.IGNORECASE)
# After a secret KEY: its closing quote, `=` or `:`, and the value, for KEY=value, KEY: value,
# "KEY": "value", \\"KEY\\": \\"value\\" (JSON in a JSON string) and 'KEY': 'value' (an object or
# array value is left to the pairs inside it). Possessive and bounded: the work stays linear.
_PAIR_TAIL = re.compile(
    r"(?P<quote>\\\"|[\"']?)(?P<sep>\s*+(?P<op>[:=])\s*+)"
    r"(?P<value>\\\"(?:[^\\]|\\[^\"]){0,MAX}+(?:\\\")?|\"(?:[^\"\\]|\\.){0,MAX}+\"?|'[^']{0,MAX}+'?"
    r"|[^\s\"'\\,;&}\])\[{][^\s\"'\\,;&}\])]*+)".replace("MAX", str(_MAX_VALUE))
)
# A colon-separated bare value runs to the end of the clause (`password: two words`, `Authorization: Basic x`).
_CLAUSE = re.compile(r"[^\r\n\"'\\,;}\]]*+")
# --KEY value (a flag and its argument, separated by white space).
_FLAG = re.compile(r"(?<![\w-])--(?P<key>[A-Za-z][A-Za-z0-9_-]*+)(?P<sep>\s++)(?P<value>[^\s-]\S*+)")


def is_secret_key(key: str) -> bool:
    """True when a key, env var or flag name names a secret (`HF_TOKEN`, `DBPASS`; not `num_tokens`)."""
    name = key.strip().lstrip("-")
    return bool(_SECRET_KEY.search(name)) and name.lower() not in _PLAIN_KEYS


def _redacted_value(tail: re.Match[str]) -> str:
    quote, value = tail.group("quote"), tail.group("value")
    if value.startswith(('\\"', '"', "'")):
        opening = '\\"' if value.startswith('\\"') else value[0]
        return f"{opening}{REDACTED}{opening}"
    if quote:  # a bare value (number, true) after a quoted key: keep the JSON valid
        return f"{quote}{REDACTED}{quote}"
    return REDACTED


def _redact_pairs(text: str, lowered: str) -> str:
    """Values of secret keys replaced; `lowered` is `text` in lower case, of the same length."""
    pieces = []
    copied = scanned = 0  # text before `copied` is in `pieces`; anchors before `scanned` are done
    for anchor in _KEY_ANCHOR.finditer(lowered):
        if anchor.start() < scanned:  # in a key or value already done
            continue
        key_start = anchor.start()
        while key_start > scanned and text[key_start - 1] in _KEY_CHARS:
            key_start -= 1
        key_end = _KEY_REST.match(text, anchor.end()).end()  # type: ignore[union-attr]  # the pattern matches the empty string
        scanned = key_end  # the rest of this key holds no other key
        tail = _PAIR_TAIL.match(text, key_end)
        quote = tail.group("quote") if tail else ""
        if not tail or not is_secret_key(text[key_start:key_end]) or text[key_start - len(quote) : key_start] != quote:
            continue
        pieces.append(text[copied : tail.start("value")] + _redacted_value(tail))
        copied = scanned = tail.end()
        if tail.group("op") == ":" and not quote and not tail.group("value").startswith(("'", '"', "\\")):
            copied = scanned = _CLAUSE.match(text, copied).end()  # type: ignore[union-attr]  # the pattern matches the empty string
    pieces.append(text[copied:])
    return "".join(pieces)


def _redact_flag(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("key")):
        return match.group()
    return match.group()[: match.start("value") - match.start()] + REDACTED


def redact_text(text: str) -> str:
    """`text` with secret values replaced by `<redacted>` (see the module docstring for the forms)."""
    lowered = _lower(text)
    if not any(word in lowered for word in _CANDIDATE_WORDS):
        return text
    # Each form is looked for only where its words are in the text: most candidates hold none.
    if "private key" in lowered:
        text = _PEM.sub(REDACTED, text)
    if any(prefix in lowered for prefix in _TOKEN_PREFIXES):
        text = _PREFIXED_TOKEN.sub(REDACTED, text)
    if "bearer" in lowered:
        text = _BEARER.sub(lambda m: m.group(1) + REDACTED, text)
    if "://" in text and "@" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
    text = _redact_pairs(text, _lower(text))
    return _FLAG.sub(_redact_flag, text) if "--" in text else text


def _lower(text: str) -> str:
    """`text` with ASCII letters in lower case (str.lower can change the length)."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def redact(value: Any, key: str = "") -> Any:
    """`value` (JSON-like) with secrets replaced by `<redacted>`: under a secret key, by `redact_text`,
    and after a secret flag in a list (`["--token", "abc"]`)."""
    if key and is_secret_key(key) and not isinstance(value, (dict, list)):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return _redact_list(value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def _redact_list(values: list) -> list:
    cleaned = []
    after_flag = False
    for item in values:
        cleaned.append(REDACTED if after_flag and isinstance(item, str) else redact(item))
        after_flag = isinstance(item, str) and item.startswith("--") and "=" not in item and is_secret_key(item)
    return cleaned


DictionaryCache = dict[tuple, tuple[pa.Array, pa.Array]]


def redact_array(
    array: pa.Array | pa.ChunkedArray, repetitive: bool = False, dictionaries: DictionaryCache | None = None
) -> pa.Array | pa.ChunkedArray:
    """A string (or dictionary of strings) column with `redact_text` applied: the candidates are found
    by RE2 over the whole column, and only they go through Python.

    A `repetitive` column (few distinct values: names, categories) is searched once per distinct value
    where its first rows repeat (700 k slices: 0.006 instead of 0.023 CPU-s a column). `dictionaries` (a dict the caller
    keeps while it redacts pieces of one table) remembers dictionaries shared by the pieces, which are
    then searched once, not once a piece.
    """
    if isinstance(array, pa.ChunkedArray):
        chunks = [redact_array(chunk, repetitive, dictionaries) for chunk in array.chunks]
        return pa.chunked_array(chunks, type=array.type)
    if pa.types.is_dictionary(array.type):
        dictionary = _redacted_dictionary(array.dictionary, dictionaries)
        return array if dictionary is array.dictionary else pa.DictionaryArray.from_arrays(array.indices, dictionary)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)) or not len(array):
        return array
    if repetitive and _few_distinct(array):
        encoded = array.dictionary_encode()
        redacted = redact_array(encoded)
        return array if redacted is encoded else redacted.cast(array.type)
    # null rows are no candidates; and_kleene, not fill_null(False), whose Python scalar would import pandas
    candidates = pc.and_kleene(pc.match_substring_regex(array, CANDIDATE_PATTERN, ignore_case=True), pc.is_valid(array))
    if not pc.any(candidates).as_py():
        return array
    found = pc.filter(array, candidates).to_pylist()
    cleaned = [redact_text(text) for text in found]
    if cleaned == found:
        return array
    return pc.replace_with_mask(array, candidates, python_array(cleaned, array.type))


def _few_distinct(array: pa.Array, sample: int = 1024) -> bool:
    """Whether the first rows repeat enough for one search per distinct value to pay (ids do not)."""
    head = array.slice(0, sample)
    return pc.count_distinct(head).as_py() * 4 <= len(head)


def _redacted_dictionary(dictionary: pa.Array, cache: DictionaryCache | None) -> pa.Array:
    if cache is None:
        return redact_array(dictionary)
    # The same memory is the same dictionary: Arrow buffers are immutable, and the cache holds the
    # dictionary, so its memory is not reused while the entry lives.
    key = (tuple(b.address if b is not None else 0 for b in dictionary.buffers()), dictionary.offset, len(dictionary))
    if key not in cache:
        cache[key] = (dictionary, redact_array(dictionary))
    return cache[key][1]


def redact_columns(data: pa.Table | pa.RecordBatch, skip: tuple[str, ...] = ()) -> pa.Table | pa.RecordBatch:
    """`data` with every string column but `skip` passed through `redact_array`."""
    for index, column_field in enumerate(data.schema):
        if column_field.name not in skip and _is_text(column_field.type):
            column = data.column(index)
            cleaned = redact_array(column)
            if cleaned is not column:
                data = data.set_column(index, column_field, cleaned)
    return data


def _is_text(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return pa.types.is_string(data_type) or pa.types.is_large_string(data_type)


DUCKDB_FUNCTION = "traceview_redact_text"


def duckdb_redacted(column_sql: str) -> str:
    """SQL for a VARCHAR expression with `redact_text` applied to the RE2 candidates only (the
    connection needs `register_duckdb` first)."""
    pattern = CANDIDATE_PATTERN.replace("'", "''")
    candidate = f"regexp_matches({column_sql}, '{pattern}', 'i')"
    return f"CASE WHEN {candidate} THEN {DUCKDB_FUNCTION}({column_sql}) ELSE {column_sql} END"


def register_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """Make `duckdb_redacted` usable on `con` and its cursors (the function is in the database's catalog)."""
    with con.cursor() as cursor:
        try:  # asking duckdb_functions() first took 16-30 ms, creating it again 0.2 ms
            cursor.create_function(DUCKDB_FUNCTION, redact_text, ["VARCHAR"], "VARCHAR", side_effects=False)
        except duckdb.CatalogException:  # registered already
            pass

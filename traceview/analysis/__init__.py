"""The analyses as a library: each returns plain data (dataclasses, polars frames) with `.to_json()`.

`report` runs the query packs, `flame` builds the host call tree, `throughput` the serving panels,
`analyze` puts them together; `families` is the kernel family rule set. Nothing here renders or writes.
"""

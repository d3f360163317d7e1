"""Rewrite every committed sample from its recorded parameters and seed.

Run from the repository root: `python sample_traces/regenerate.py` (same as
`python -m sample_traces.synth regenerate`).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from sample_traces.synth.samples import regenerate

    for path in regenerate():
        print(path)

"""`python -m sample_traces.synth`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())

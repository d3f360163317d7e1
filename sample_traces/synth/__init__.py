"""Synthesise profiler traces in real formats from a described workload and device.

`python -m sample_traces.synth --help` for the command line; the library entry point is
`generate(spec, out_dir)`. Every output is a pure function of its `RunSpec` (seed included).
"""

from __future__ import annotations

from .spec import PRESETS, Device, ModelShape, RunSpec, Stall, Variant, Workload
from .writer import generate

__all__ = [
    "PRESETS",
    "Device",
    "ModelShape",
    "RunSpec",
    "Stall",
    "Variant",
    "Workload",
    "generate",
]

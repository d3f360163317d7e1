"""Moved to `traceview.analysis.families`; this name stays until `traceview diff` imports it from there."""

from traceview.analysis.families import FAMILY_FRAGMENT, family_ctes

__all__ = ["FAMILY_FRAGMENT", "family_ctes"]

"""Synthetic sample traces with known ground truth (see README.md)."""

"""The committed cluster samples: their parameters and seeds, and how to rewrite them."""

from __future__ import annotations

import shutil
from pathlib import Path

from .cluster import ClusterSpec
from .cluster_writer import generate_cluster
from .samples import SAMPLES_DIR


def cluster_specs() -> dict[str, ClusterSpec]:
    """Sample directory name -> the spec that writes it (4 ranks, 4 steps, rank 2 late on steps 2 and 3
    by 3 ms, ring link 1 -> 2 at 20 GB/s instead of 80 GB/s)."""
    return {
        "cluster_gpu": ClusterSpec(name="cluster_gpu", vendor="gpu", seed=3101),
        "cluster_ascend": ClusterSpec(name="cluster_ascend", vendor="ascend", seed=3102),
    }


def regenerate_clusters(root: Path = SAMPLES_DIR) -> list[Path]:
    """Rewrite every committed cluster sample under `root` (each directory is wholly generated)."""
    written: list[Path] = []
    for name, spec in cluster_specs().items():
        shutil.rmtree(root / name, ignore_errors=True)
        written += generate_cluster(spec, root / name, compress=True)
    return written

"""Published peak figures of accelerators, matched from the device names a trace records.

The figures are vendors' published numbers (dense, no sparsity), with their source. Ascend
910B has no official per-chip HBM bandwidth; the commonly quoted 1.6 TB/s is marked as a
community figure, and `--peak-bw` overrides any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from traceview.parsers.parsed import rows_table


@dataclass(frozen=True)
class DeviceSpec:
    """Peak figures of one accelerator model."""

    name: str
    pattern: str  # SQL ILIKE pattern matched against the trace's device names
    vendor: str
    peak_bw_bytes_per_s: float
    peak_flops: float  # dense BF16/FP16 tensor FLOP/s
    hbm_bytes: int
    source: str


SPECS: tuple[DeviceSpec, ...] = (
    # NVIDIA: datasheets / product pages (A100 80GB SXM, H100 SXM5 and PCIe, H200 SXM, B200 HGX).
    DeviceSpec("A100 80GB", "%A100%80GB%", "nvidia", 2.039e12, 312e12, 80 << 30, "NVIDIA A100 datasheet"),
    DeviceSpec("A100 40GB", "%A100%", "nvidia", 1.555e12, 312e12, 40 << 30, "NVIDIA A100 datasheet"),
    DeviceSpec("H100 PCIe", "%H100%PCIe%", "nvidia", 2.0e12, 756e12, 80 << 30, "NVIDIA H100 datasheet"),
    DeviceSpec("H100 NVL", "%H100 NVL%", "nvidia", 3.9e12, 835e12, 94 << 30, "NVIDIA H100 datasheet"),
    DeviceSpec("H100 SXM", "%H100%", "nvidia", 3.35e12, 989e12, 80 << 30, "NVIDIA H100 datasheet"),
    DeviceSpec("H800 SXM", "%H800%", "nvidia", 3.35e12, 989e12, 80 << 30, "NVIDIA H800 (memory as H100 SXM)"),
    DeviceSpec("H200", "%H200%", "nvidia", 4.8e12, 989e12, 141 << 30, "NVIDIA H200 product page"),
    DeviceSpec("H20", "%H20%", "nvidia", 4.0e12, 148e12, 96 << 30, "community figure, not official"),
    DeviceSpec("B200", "%B200%", "nvidia", 8.0e12, 2.25e15, 180 << 30, "NVIDIA HGX B200 datasheet (per GPU)"),
    DeviceSpec("V100", "%V100%", "nvidia", 0.9e12, 125e12, 32 << 30, "NVIDIA V100 datasheet (SXM2)"),
    DeviceSpec("RTX 4080 Laptop", "%4080 Laptop%", "nvidia", 0.432e12, 98e12, 12 << 30, "NVIDIA GeForce specs"),
    # AMD: Instinct datasheets.
    DeviceSpec("MI300X", "%MI300X%", "amd", 5.3e12, 1.307e15, 192 << 30, "AMD Instinct MI300X datasheet"),
    DeviceSpec("MI250X", "%MI250X%", "amd", 3.2e12, 383e12, 128 << 30, "AMD Instinct MI250X datasheet"),
    DeviceSpec("MI250", "%MI250%", "amd", 3.2e12, 362e12, 128 << 30, "AMD Instinct MI250 datasheet"),
    DeviceSpec("MI210", "%MI210%", "amd", 1.6e12, 181e12, 64 << 30, "AMD Instinct MI210 datasheet"),
    # Huawei Ascend: 950PR/950DT from Huawei Connect 2025 keynote; 910B has no official figure.
    DeviceSpec("Ascend 950PR", "%950PR%", "huawei", 1.6e12, 500e12, 128 << 30, "Huawei Connect 2025 keynote"),
    DeviceSpec("Ascend 950DT", "%950DT%", "huawei", 4.0e12, 500e12, 144 << 30, "Huawei Connect 2025 keynote"),
    DeviceSpec("Ascend 910B", "%910B%", "huawei", 1.6e12, 313e12, 64 << 30, "community figure, not official"),
)


SPECS_SCHEMA = pa.schema(
    [
        ("priority", pa.int64()),
        ("name", pa.string()),
        ("pattern", pa.string()),
        ("vendor", pa.string()),
        ("peak_bw_bytes_per_s", pa.float64()),
        ("peak_flops", pa.float64()),
        ("hbm_bytes", pa.int64()),
        ("source", pa.string()),
    ]
)


def specs_table() -> pa.Table:
    """The device table as Arrow, in matching order (first match wins)."""
    return rows_table(
        SPECS_SCHEMA,
        [
            {
                "priority": index,
                "name": spec.name,
                "pattern": spec.pattern,
                "vendor": spec.vendor,
                "peak_bw_bytes_per_s": spec.peak_bw_bytes_per_s,
                "peak_flops": spec.peak_flops,
                "hbm_bytes": spec.hbm_bytes,
                "source": spec.source,
            }
            for index, spec in enumerate(SPECS)
        ]
    )

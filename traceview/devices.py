"""Published peak figures of accelerators, matched from the device names a trace records.

The figures are vendors' published numbers (dense, no sparsity), with their source. Ascend
910B has no official per-chip HBM bandwidth; the commonly quoted 1.6 TB/s is marked as a
community figure, and `--peak-bw` overrides any of them.

Interconnect peaks (`LINKS`) are per direction, bytes/s: datasheets give NVLink and HCCS as the
sum of both directions (A100 600 GB/s is 300 GB/s each way), which is halved here, the figure
NCCL's bus bandwidth is compared with. Each device names its fastest link between devices of a
node (`DeviceSpec.link`); PCIe, InfiniBand and RoCE figures are listed for `--peak-link-bw`
and the reports. `--peak-link-bw` overrides the device's link peak.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from traceview.parsers.parsed import rows_table


@dataclass(frozen=True)
class LinkSpec:
    """Peak of one interconnect, per direction."""

    name: str
    transport: str  # NVLink, PCIe, InfiniBand, RoCE, HCCS, UB
    bytes_per_s: float
    source: str


LINKS: tuple[LinkSpec, ...] = (
    # NVLink per generation, per GPU (datasheets give both directions together; halved).
    LinkSpec("NVLink 2 (V100)", "NVLink", 150e9, "NVIDIA V100 datasheet: 300 GB/s NVLink, both directions"),
    LinkSpec("NVLink 3 (A100)", "NVLink", 300e9, "NVIDIA A100 datasheet: 600 GB/s NVLink, both directions"),
    LinkSpec("NVLink 4 (H100/H200)", "NVLink", 450e9, "NVIDIA H100 datasheet: 900 GB/s NVLink, both directions"),
    LinkSpec("NVLink 4 (H800)", "NVLink", 200e9, "NVIDIA H800 product brief: 400 GB/s NVLink, both directions"),
    LinkSpec("NVLink bridge (H100 NVL)", "NVLink", 300e9, "NVIDIA H100 datasheet: 600 GB/s NVLink bridge, both"),
    LinkSpec("NVLink 5 (B200)", "NVLink", 900e9, "NVIDIA HGX B200 datasheet: 1.8 TB/s NVLink per GPU, both"),
    # PCIe x16 per direction (PCI-SIG base specifications: 8, 16, 32 GT/s per lane, 128b/130b).
    LinkSpec("PCIe 3.0 x16", "PCIe", 15.75e9, "PCI-SIG PCIe 3.0 base specification (8 GT/s x16)"),
    LinkSpec("PCIe 4.0 x16", "PCIe", 31.5e9, "PCI-SIG PCIe 4.0 base specification (16 GT/s x16)"),
    LinkSpec("PCIe 5.0 x16", "PCIe", 63e9, "PCI-SIG PCIe 5.0 base specification (32 GT/s x16)"),
    # NICs, per port and direction (line rate / 8).
    LinkSpec("InfiniBand HDR", "InfiniBand", 25e9, "NVIDIA ConnectX-6 datasheet: 200 Gb/s HDR"),
    LinkSpec("InfiniBand NDR", "InfiniBand", 50e9, "NVIDIA ConnectX-7 datasheet: 400 Gb/s NDR"),
    LinkSpec("RoCE 100GbE", "RoCE", 12.5e9, "NVIDIA ConnectX-6 Dx datasheet: 100 Gb/s Ethernet"),
    LinkSpec("RoCE 200GbE", "RoCE", 25e9, "NVIDIA ConnectX-6 Dx datasheet: 200 Gb/s Ethernet"),
    LinkSpec("RoCE 400GbE", "RoCE", 50e9, "NVIDIA ConnectX-7 datasheet: 400 Gb/s Ethernet"),
    # AMD Infinity Fabric (aggregate peer-to-peer, both directions; halved).
    LinkSpec("Infinity Fabric (MI300X)", "xGMI", 448e9, "AMD Instinct MI300X datasheet: 896 GB/s peer-to-peer"),
    # Huawei: no official per-chip HCCS figure for 910B/910C; community figures, marked as such.
    LinkSpec("HCCS (910B)", "HCCS", 196e9, "community figure, not official: 392 GB/s HCCS, both directions"),
    LinkSpec("HCCS (910C)", "HCCS", 392e9, "community figure, not official: 784 GB/s HCCS, both directions"),
    LinkSpec("UB (950)", "UB", 1e12, "Huawei Connect 2025 keynote: 2 TB/s interconnect, both directions"),
)
LINKS_BY_NAME = {link.name: link for link in LINKS}


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
    link: str | None = None  # the LINKS entry of its fastest device-to-device link

    @property
    def link_spec(self) -> LinkSpec | None:
        """The device's fastest device-to-device link, if known."""
        return LINKS_BY_NAME[self.link] if self.link else None


SPECS: tuple[DeviceSpec, ...] = (
    # NVIDIA: datasheets / product pages (A100 80GB SXM, H100 SXM5 and PCIe, H200 SXM, B200 HGX).
    DeviceSpec(
        "A100 80GB", "%A100%80GB%", "nvidia", 2.039e12, 312e12, 80 << 30, "NVIDIA A100 datasheet", "NVLink 3 (A100)"
    ),
    DeviceSpec("A100 40GB", "%A100%", "nvidia", 1.555e12, 312e12, 40 << 30, "NVIDIA A100 datasheet", "NVLink 3 (A100)"),
    DeviceSpec("H100 PCIe", "%H100%PCIe%", "nvidia", 2.0e12, 756e12, 80 << 30, "NVIDIA H100 datasheet", "PCIe 5.0 x16"),
    DeviceSpec(
        "H100 NVL",
        "%H100 NVL%",
        "nvidia",
        3.9e12,
        835e12,
        94 << 30,
        "NVIDIA H100 datasheet",
        "NVLink bridge (H100 NVL)",
    ),
    DeviceSpec(
        "H100 SXM", "%H100%", "nvidia", 3.35e12, 989e12, 80 << 30, "NVIDIA H100 datasheet", "NVLink 4 (H100/H200)"
    ),
    DeviceSpec(
        "H800 SXM", "%H800%", "nvidia", 3.35e12, 989e12, 80 << 30, "NVIDIA H800 (memory as H100 SXM)", "NVLink 4 (H800)"
    ),
    DeviceSpec(
        "H200", "%H200%", "nvidia", 4.8e12, 989e12, 141 << 30, "NVIDIA H200 product page", "NVLink 4 (H100/H200)"
    ),
    DeviceSpec("H20", "%H20%", "nvidia", 4.0e12, 148e12, 96 << 30, "community figure, not official"),
    DeviceSpec(
        "B200", "%B200%", "nvidia", 8.0e12, 2.25e15, 180 << 30, "NVIDIA HGX B200 datasheet (per GPU)", "NVLink 5 (B200)"
    ),
    DeviceSpec("V100", "%V100%", "nvidia", 0.9e12, 125e12, 32 << 30, "NVIDIA V100 datasheet (SXM2)", "NVLink 2 (V100)"),
    DeviceSpec(
        "RTX 4080 Laptop", "%4080 Laptop%", "nvidia", 0.432e12, 98e12, 12 << 30, "NVIDIA GeForce specs", "PCIe 4.0 x16"
    ),
    # AMD: Instinct datasheets.
    DeviceSpec(
        "MI300X",
        "%MI300X%",
        "amd",
        5.3e12,
        1.307e15,
        192 << 30,
        "AMD Instinct MI300X datasheet",
        "Infinity Fabric (MI300X)",
    ),
    DeviceSpec("MI250X", "%MI250X%", "amd", 3.2e12, 383e12, 128 << 30, "AMD Instinct MI250X datasheet"),
    DeviceSpec("MI250", "%MI250%", "amd", 3.2e12, 362e12, 128 << 30, "AMD Instinct MI250 datasheet"),
    DeviceSpec("MI210", "%MI210%", "amd", 1.6e12, 181e12, 64 << 30, "AMD Instinct MI210 datasheet"),
    # Huawei Ascend: 950PR/950DT from Huawei Connect 2025 keynote; 910B has no official figure.
    DeviceSpec(
        "Ascend 950PR", "%950PR%", "huawei", 1.6e12, 500e12, 128 << 30, "Huawei Connect 2025 keynote", "UB (950)"
    ),
    DeviceSpec(
        "Ascend 950DT", "%950DT%", "huawei", 4.0e12, 500e12, 144 << 30, "Huawei Connect 2025 keynote", "UB (950)"
    ),
    DeviceSpec(
        "Ascend 910C", "%910C%", "huawei", 3.2e12, 780e12, 128 << 30, "community figure, not official", "HCCS (910C)"
    ),
    DeviceSpec(
        "Ascend 910B", "%910B%", "huawei", 1.6e12, 313e12, 64 << 30, "community figure, not official", "HCCS (910B)"
    ),
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
        ("link_name", pa.string()),
        ("link_transport", pa.string()),
        ("link_bw_bytes_per_s", pa.float64()),
        ("link_source", pa.string()),
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
                **_link_columns(spec.link_spec),
            }
            for index, spec in enumerate(SPECS)
        ],
    )


def _link_columns(link: LinkSpec | None) -> dict[str, object]:
    return {
        "link_name": link.name if link else None,
        "link_transport": link.transport if link else None,
        "link_bw_bytes_per_s": link.bytes_per_s if link else None,
        "link_source": link.source if link else None,
    }

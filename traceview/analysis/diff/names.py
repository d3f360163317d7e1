"""Name normalisation: device task names to kernel keys, framework op names to vendor-neutral keys."""

from __future__ import annotations

import re

_TEMPLATE = re.compile(r"<[^<>]*>")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# a separator then 6+ hex digits mixing digits and letters (a hash suffix), or any 16+ hex digit id
_HASH_SUFFIX = re.compile(
    r"(?:[_.$-])(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b|\b[0-9a-fA-F]{16,}\b"
)
_SPACES = re.compile(r"\s+")
MAX_TEMPLATE_DEPTH = 16  # nested template argument lists stripped, innermost first

# Framework ops across vendors: the same operation under different names (CUDA/vLLM vs torch_npu).
_OP_ALIASES = {
    "mm": "matmul", "bmm": "matmul", "addmm": "matmul", "linear": "matmul", "matmul": "matmul",
    "varlen_fwd": "attention", "fwd": "attention", "fwd_kvcache": "attention", "infer_attention_score": "attention",
    "fused_infer_attention_score": "attention", "prompt_flash_attention": "attention",
    "incre_flash_attention": "attention", "scaled_dot_product_attention": "attention",
    "flash_attention": "attention", "paged_attention": "attention",
    "silu_and_mul": "swiglu", "swiglu": "swiglu",
    "rotary_embedding": "rotary_embedding", "apply_rotary_pos_emb": "rotary_embedding",
    "reshape_and_cache_flash": "reshape_and_cache", "reshape_and_cache": "reshape_and_cache",
    "fused_add_rms_norm": "add_rms_norm", "add_rms_norm": "add_rms_norm",
}  # fmt: skip


def normalise_kernel(name: str) -> str:
    """A device task name without template arguments, addresses and hash suffixes / long hex ids."""
    text = name or ""
    for _ in range(MAX_TEMPLATE_DEPTH):
        stripped = _TEMPLATE.sub("", text)
        if stripped == text:
            break
        text = stripped
    text = _ADDRESS.sub("0x?", text)
    text = _HASH_SUFFIX.sub("", text)
    return _SPACES.sub(" ", text).strip()


def canonical_op(name: str) -> str:
    """A vendor-neutral key for a framework op: namespace and `npu_` prefixes dropped, known aliases merged."""
    base = (name or "").rsplit("::", 1)[-1].lstrip("_")
    if base.startswith("npu_"):
        base = base[4:]
    return _OP_ALIASES.get(base, base)

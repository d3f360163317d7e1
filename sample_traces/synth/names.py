"""What each model op is called on each vendor's stack: host op, launch API, kernel, type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Names:
    """How a model op is called on each vendor's stack."""

    nv_op: str
    nv_kernel: str
    npu_op: str
    npu_api: str  # aclnn API launched by the task queue
    npu_kernel: str
    npu_type: str
    npu_core: str  # Accelerator Core
    family: str


GEMM_BIG = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_"
    "execute_segment_k_off_kernel__5x_cublas"
)
GEMM_SMALL = (
    "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize64x64x64_warpgroupsize1x1x1_"
    "execute_segment_k_on_kernel__5x_cublas"
)
GEMM = Names(
    "aten::mm",
    GEMM_BIG,
    "aten::matmul",
    "aclnnMatmul",
    "aclnnMatmul_MatMulV3Common_MatMulV3",
    "MatMulV3",
    "AI_CORE",
    "gemm",
)

NAMES: dict[str, Names] = {
    "embedding": Names(
        "aten::embedding",
        "void at::native::(anonymous namespace)::indexSelectLargeIndex<c10::BFloat16, long, "
        "unsigned int, 2, 2, -2, true>(at::cuda::detail::TensorInfo<c10::BFloat16, unsigned int>, "
        "at::cuda::detail::TensorInfo<c10::BFloat16, unsigned int>, "
        "at::cuda::detail::TensorInfo<long, unsigned int>, int, int, unsigned int, unsigned int, long)",
        "aten::embedding",
        "aclnnEmbedding",
        "aclnnEmbedding_GatherV2AiCore_GatherV2",
        "GatherV2",
        "AI_VECTOR_CORE",
        "elementwise",
    ),
    "rms_norm": Names(
        "_C::rms_norm",
        "void vllm::rms_norm_kernel<c10::BFloat16>(c10::BFloat16*, c10::BFloat16 const*, "
        "c10::BFloat16 const*, float, int, int)",
        "npu::npu_rms_norm",
        "aclnnRmsNorm",
        "aclnnRmsNorm_RmsNorm_RmsNorm",
        "RmsNorm",
        "AI_VECTOR_CORE",
        "norm",
    ),
    "add_rms_norm": Names(
        "_C::fused_add_rms_norm",
        "void vllm::fused_add_rms_norm_kernel<c10::BFloat16, 8>(c10::BFloat16*, c10::BFloat16*, "
        "c10::BFloat16 const*, float, int, int)",
        "npu::npu_add_rms_norm",
        "aclnnAddRmsNorm",
        "aclnnAddRmsNorm_AddRmsNorm_AddRmsNorm",
        "AddRmsNorm",
        "AI_VECTOR_CORE",
        "norm",
    ),
    "gemm": GEMM,
    "rotary": Names(
        "_C::rotary_embedding",
        "void vllm::rotary_embedding_kernel<c10::BFloat16, true>(long const*, c10::BFloat16*, "
        "c10::BFloat16*, c10::BFloat16 const*, int, long, long, long, int, int, int)",
        "npu::npu_apply_rotary_pos_emb",
        "aclnnApplyRotaryPosEmb",
        "aclnnApplyRotaryPosEmb_ApplyRotaryPosEmb_ApplyRotaryPosEmb",
        "ApplyRotaryPosEmb",
        "AI_VECTOR_CORE",
        "elementwise",
    ),
    "kv_write": Names(
        "_C_cache_ops::reshape_and_cache_flash",
        "void vllm::reshape_and_cache_flash_kernel<__nv_bfloat16, __nv_bfloat16, "
        "(vllm::Fp8KVCacheDataType)0>(__nv_bfloat16 const*, __nv_bfloat16 const*, __nv_bfloat16*, "
        "__nv_bfloat16*, long const*, long, long, long, long, int, int, int, float const*, float const*)",
        "npu::_npu_reshape_and_cache",
        "ReshapeAndCacheOperation",
        "ReshapeAndCacheNdKernel",
        "ReshapeAndCacheNdKernel",
        "AI_VECTOR_CORE",
        "kv_cache",
    ),
    "attn_prefill": Names(
        "_vllm_fa2_C::varlen_fwd",
        "void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
        "cutlass::bfloat16_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::bfloat16_t> >, "
        "false, true, false, false, false, true, false, false>(flash::Flash_fwd_params)",
        "npu::npu_fused_infer_attention_score",
        "aclnnFusedInferAttentionScoreV2",
        "aclnnFusedInferAttentionScoreV2_FusedInferAttentionScore_FusedInferAttentionScore",
        "FusedInferAttentionScore",
        "MIX_AIC",
        "attention",
    ),
    "attn_decode": Names(
        "_vllm_fa2_C::varlen_fwd",
        "void flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, "
        "false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, cutlass::bfloat16_t> >, "
        "true, false, false, false, true, true, false, false>(flash::Flash_fwd_params)",
        "npu::npu_fused_infer_attention_score",
        "aclnnFusedInferAttentionScoreV2",
        "aclnnFusedInferAttentionScoreV2_FusedInferAttentionScore_FusedInferAttentionScore",
        "FusedInferAttentionScore",
        "MIX_AIC",
        "attention",
    ),
    "attn_combine": Names(
        "_vllm_fa2_C::varlen_fwd",
        "void flash::flash_fwd_splitkv_combine_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, "
        "false, false, cutlass::bfloat16_t, Flash_kernel_traits<128, 64, 128, 4, "
        "cutlass::bfloat16_t> >, 4, 3, true>(flash::Flash_fwd_params)",
        "",
        "",
        "",
        "",
        "",
        "attention",
    ),
    "silu_mul": Names(
        "_C::silu_and_mul",
        "void vllm::act_and_mul_kernel<c10::BFloat16, &(c10::BFloat16 vllm::silu_kernel"
        "<c10::BFloat16>(c10::BFloat16 const&)), true>(c10::BFloat16*, c10::BFloat16 const*, int)",
        "npu::npu_swiglu",
        "aclnnSwiGlu",
        "aclnnSwiGlu_SwiGlu_SwiGlu",
        "SwiGlu",
        "AI_VECTOR_CORE",
        "elementwise",
    ),
    "argmax": Names(
        "aten::argmax",
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
        "at::native::ArgMaxOps<float>, unsigned int, long, 4> >(at::native::ReduceOp<float, "
        "at::native::ArgMaxOps<float>, unsigned int, long, 4>)",
        "aten::argmax",
        "aclnnArgMax",
        "aclnnArgMax_ArgMaxV2AiCore_ArgMaxV2",
        "ArgMaxV2",
        "AI_VECTOR_CORE",
        "sampling",
    ),
    "h2d": Names(
        "aten::copy_",
        "Memcpy HtoD (Pinned -> Device)",
        "aten::copy_",
        "aclrtMemcpyAsync",
        "MEMCPY_ASYNC",
        "",
        "",
        "copy",
    ),
    "d2h": Names(
        "aten::copy_",
        "Memcpy DtoH (Device -> Pinned)",
        "aten::copy_",
        "aclrtMemcpyAsync",
        "MEMCPY_ASYNC",
        "",
        "",
        "copy",
    ),
}

# Extra per-layer kernels a runtime variant can add (after the attention op).
EXTRA: dict[str, Names] = {
    "qk_norm": Names(
        "_C::fused_qk_norm",
        "void vllm::fused_qk_norm_kernel<c10::BFloat16, 8>(c10::BFloat16*, c10::BFloat16 const*, "
        "c10::BFloat16 const*, float, int, int, int)",
        "npu::npu_qk_norm",
        "aclnnQkNorm",
        "aclnnQkNorm_QkNorm_QkNorm",
        "QkNorm",
        "AI_VECTOR_CORE",
        "norm",
    ),
    "attn_out_cast": Names(
        "aten::_to_copy",
        "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)"
        "::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const"
        "::{lambda()#7}::operator()() const::{lambda(c10::BFloat16)#1}, "
        "at::detail::Array<char*, 2> >(int, at::native::(anonymous namespace)"
        "::direct_copy_kernel_cuda(at::TensorIteratorBase&)::{lambda()#3}::operator()() const"
        "::{lambda()#7}::operator()() const::{lambda(c10::BFloat16)#1}, at::detail::Array<char*, 2>)",
        "aten::_to_copy",
        "aclnnCast",
        "aclnnCast_CastAiCore_Cast",
        "Cast",
        "AI_VECTOR_CORE",
        "elementwise",
    ),
}


NPU_DTYPE = {"c10::BFloat16": "DT_BF16", "float": "FLOAT", "long int": "INT64", "int": "INT32", "Scalar": ""}

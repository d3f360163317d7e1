"""The one kernel-family rule set (queries/core/_family_rules.sql).

Every name pattern is pinned to a real kernel name (from the corpus, from a published profile, or from the
library's source where no profile shows it), the first matching rule wins, and `kernel_families`, the
throughput mix and `diff --by family` give every task the same family.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from conftest import write_kineto, x_event

from traceview.analysis import throughput
from traceview.analysis.diff.sides import Side
from traceview.analysis.diff.summary import families_present
from traceview.analysis.families import family_ctes
from traceview.engine import connect, resolve_store
from traceview.packs import find_pack
from traceview.sandbox import run_query

# (kind, name, family, where the name comes from)
PINNED = [
    # copies and sets: by task kind, and copy kernels by name
    ("memcpy", "Memcpy DtoD (Device -> Device)", "copy", "corpus kineto/hta/nccl_data"),
    ("memcpy", "SDMA", "copy", "corpus ascend (a memcpy task named by its engine)"),
    ("memset", "Memset (Device)", "copy", "corpus kineto/hta/nccl_data"),
    ("kernel", "MEMCPY_ASYNC", "copy", "Ascend TASK.taskType (reference/ascend-formats.md)"),
    (
        "kernel",
        "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda(at::TensorIteratorBase&)"
        "::{lambda()#3}::operator()() const::{lambda()#7}::operator()() const::{lambda(float)#1}>",
        "copy",
        "corpus kineto/tracelens/eager_trace (cut)",
    ),
    ("kernel", "aclnnMm_MatMulCommon_MemSet", "copy", "corpus ascend torch_npu_2025: a MatMul's output memset"),
    ("kernel", "NonZero_MemSet", "copy", "corpus ascend torch_npu_cann83_level2"),
    ("kernel", "_combined_routing_memset", "other", "corpus vllm_decode_full: a Triton MoE routing kernel"),
    # communication: by task kind (the parsers' NCCL/HCCL tasks) and by name
    ("comm", "hcom_broadcast__483_0", "comm", "corpus ascend msinsight test_rank_0"),
    ("kernel", "hcom_broadcast__483_0", "comm", "the same HCCL op where the dump does not mark it"),
    ("kernel", "hcom_batchSendRecv__128_3_1", "comm", "corpus ascend torch_npu_cann83_level2"),
    ("kernel", "ncclKernel_AllReduce_RING_LL_Sum_float(ncclDevComm*, unsigned long, ncclWork*)", "comm", "corpus"),
    ("kernel", "ncclDevKernel_AllGather_RING_LL(ncclDevKernelArgsStorage<4096ul>)", "comm", "corpus tracelens"),
    ("kernel", "ncclDevKernel_Generic_1", "comm", "RCCL on MI300, published vLLM profile"),
    (
        "kernel",
        "ncclDevKernel_ReduceScatter_Sum_f32_RING_LL(ncclDevKernelArgsStorage<(unsigned long)4096>)",
        "comm",
        "published profile",
    ),
    ("kernel", "mscclKernel_Sum_hip_bfloat16_Simple", "comm", "RCCL's MSCCL, published ROCm profile"),
    (
        "kernel",
        "void mscclpp::executionKernel<__nv_bfloat16, mscclpp::LL16Packet>(int, __nv_bfloat16*, __nv_bfloat16*, "
        "__nv_bfloat16*, unsigned long, mscclpp::DeviceExecutionPlan*, unsigned int)",
        "comm",
        "MSCCL++ executor kernel (microsoft/mscclpp source)",
    ),
    (
        "kernel",
        "void (anonymous namespace)::multimem_all_reduce_kernel<c10::BFloat16, 16>(c10::BFloat16*, unsigned long, "
        "unsigned int**, unsigned long, unsigned long)",
        "comm",
        "corpus tracelens/eager_trace: torch symmetric memory",
    ),
    ("kernel", "void c10d::intra_node_comm::oneShotAllReduceKernel<4", "comm", "published torch profile (cut)"),
    (
        "kernel",
        "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 2>(vllm::RankData*, vllm::RankSignals, vllm::Signal*, "
        "__nv_bfloat16*, int, int)",
        "comm",
        "vLLM custom all-reduce, published profile",
    ),
    (
        "kernel",
        "void sglang::cross_device_reduce_2stage<__half, 8>(sglang::RankData*, sglang::RankSignals, sglang::Signal*, "
        "__half*, int, int)",
        "comm",
        "SGLang custom all-reduce, published profile",
    ),
    ("kernel", "aiter::cross_device_reduce_2stage<bf16,8,false>", "comm", "aiter custom all-reduce (ROCm vLLM)"),
    (
        "kernel",
        "void flashinfer::trtllm_allreduce_fusion::allreduce_fusion_kernel_oneshot_lamport<(flashinfer::"
        "trtllm_allreduce_fusion::AllReduceFusionPattern)1, __nv_bfloat16, 8, false, false>(flashinfer::"
        "trtllm_allreduce_fusion::AllReduceFusionParams<__nv_bfloat16>)",
        "comm",
        "SGLang with FlashInfer all-reduce fusion, published profile",
    ),
    (
        "kernel",
        "quickreduce::allreduce_prototype_twoshot<AllReduceTwoshot<__half, CodecQ4<__half,4>, true>, __half>",
        "comm",
        "vLLM/SGLang quick all-reduce (ROCm), published profile",
    ),
    (
        "kernel",
        "void deep_ep::intranode::combine<__nv_bfloat16, (int)8, (int)768, (int)4096>(T1 *, float *",
        "comm",
        "DeepEP, published profile (cut)",
    ),
    ("kernel", "void primus_turbo::deep_ep::intranode::cached_notify_dispatch<8>(int const*, i", "comm", "(cut)"),
    ("kernel", "deep_ep::intranode::dispatch", "comm", "DeepEP normal mode (prefill)"),
    ("kernel", "deep_ep::internode::combine", "comm", "DeepEP across nodes"),
    ("kernel", "deep_ep::internode_ll::dispatch", "comm", "DeepEP low-latency mode (decode)"),
    ("kernel", "nvshmemi_proxy_rma_entrypoint_blocking", "comm", "NVSHMEM, published nsys listing"),
    ("kernel", "void barrier_on_stream_kernel_threadgroup<(threadgroup_t)1>(int, int)", "comm", "NVSHMEM barrier"),
    ("kernel", "rdxn_on_stream_kernel", "comm", "NVSHMEM reduce on stream (NVIDIA/nvshmem source)"),
    ("kernel", "reducescatter_on_stream_kernel", "comm", "NVSHMEM reduce-scatter on stream (NVIDIA/nvshmem source)"),
    ("kernel", "alltoall_on_stream_kernel", "comm", "NVSHMEM all-to-all on stream (NVIDIA/nvshmem source)"),
    # look like communication but are not
    ("kernel", "aclnnEqTensor_BroadcastToAiCore_BroadcastTo", "elementwise", "corpus ascend: a tensor broadcast"),
    ("kernel", "mul_broadcast_2d_kernel", "elementwise", "published vLLM profile: a pointwise multiply"),
    ("kernel", "small_reduce_kernel", "other", "synthetic: 'all_reduce' inside a word"),
    ("kernel", "void deep_ep::layout::get_dispatch_layout<256, 32, 8>", "other", "DeepEP's local layout kernel"),
    # the compute families, one corpus name each
    ("kernel", "store_kvcache_kernel", "kv_cache", "corpus kineto/nano-vllm"),
    ("kernel", "attn_fwd", "attention", "corpus kineto/tracelens"),
    ("kernel", "ampere_sgemm_32x128_nt", "gemm", "corpus kineto/hta/nccl_data"),
    ("kernel", "RmsNorm", "norm", "corpus ascend"),
    ("kernel", "_topk_forward", "sampling", "corpus kineto"),
    ("kernel", "Cast", "elementwise", "corpus ascend"),
    ("kernel", "merge", "other", "corpus ascend"),
]


def families_of(tasks: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, int | None]]:
    """(kind, name) -> (family, deciding rule) under the core pack's rules."""
    with duckdb.connect() as con:
        con.execute("CREATE TABLE device_tasks (kind VARCHAR, name VARCHAR)")
        con.executemany("INSERT INTO device_tasks VALUES (?, ?)", tasks)
        rows = con.sql(f"WITH {family_ctes()} SELECT kind, name, family, rule FROM task_families").fetchall()
    return {(kind, name): (family, rule) for kind, name, family, rule in rows}


@pytest.mark.parametrize(("kind", "name", "family", "source"), PINNED, ids=[p[1][:60] for p in PINNED])
def test_family_of_a_real_name(kind: str, name: str, family: str, source: str) -> None:
    assert families_of([(kind, name)])[(kind, name)][0] == family, source


def test_every_rule_is_pinned() -> None:
    with duckdb.connect() as con:
        con.execute("CREATE TABLE device_tasks (kind VARCHAR, name VARCHAR)")
        rules = {r[0] for r in con.sql(f"WITH {family_ctes()} SELECT priority FROM family_rules").fetchall()}
    decided = {rule for _, rule in families_of([(k, n) for k, n, _, _ in PINNED]).values()}
    assert rules - decided == set()


def test_first_matching_rule_wins() -> None:
    # the torch symmetric-memory all-reduce also matches the elementwise rule ("multimem" has "mul")
    name = next(p[1] for p in PINNED if "multimem" in p[1])
    with duckdb.connect() as con:
        con.execute("CREATE TABLE device_tasks (kind VARCHAR, name VARCHAR)")
        con.execute("INSERT INTO device_tasks VALUES ('kernel', ?)", [name])
        matching = con.sql(
            f"WITH {family_ctes()} SELECT family FROM family_rules "
            "WHERE pattern IS NOT NULL AND regexp_matches(?, pattern) ORDER BY priority",
            params=[name],
        ).fetchall()
    assert [m[0] for m in matching] == ["comm", "elementwise"]
    assert families_of([("kernel", name)])[("kernel", name)][0] == "comm"


def test_diff_counts_each_name_in_one_family() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE device_tasks (kind VARCHAR, name VARCHAR)")
    multimem = next(p[1] for p in PINNED if "multimem" in p[1])
    con.executemany("INSERT INTO device_tasks VALUES (?, ?)", [("kernel", multimem), ("memset", "Memset (Device)")])
    assert families_present(SimpleNamespace(con=con)) == {"comm", "copy"}


# -- the three readers of the rules agree on a trace ---------------------------------------------------------

KERNELS = [  # (category, name, µs)
    ("kernel", "void deep_ep::intranode::dispatch<8, 768, 6144>(int4*, float*, int*)", 40),
    ("kernel", "void deep_ep::intranode::combine<__nv_bfloat16, 8, 768, 4096>(__nv_bfloat16*, float*)", 30),
    ("kernel", "void vllm::cross_device_reduce_1stage<__nv_bfloat16, 2>(vllm::RankData*, int, int)", 20),
    ("kernel", "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)", 10),
    ("kernel", "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", 50),
    ("kernel", "flash_fwd_splitkv_kernel", 60),
    ("kernel", "vllm::act_and_mul_kernel<silu_kernel>", 7),
    ("gpu_memcpy", "Memcpy HtoD (Pageable -> Device)", 5),
    ("gpu_memset", "Memset (Device)", 3),
]
EXPECTED_NS = {"comm": 100_000, "gemm": 50_000, "attention": 60_000, "elementwise": 7_000, "copy": 8_000}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("families")
    base = 1_712_000_000_000_000
    events = [x_event("ProfilerStep#1", base, "1000.000", cat="user_annotation")]
    for i, (cat, name, dur) in enumerate(KERNELS):
        t = base + 10 + 100 * i
        events.append(x_event("cudaLaunchKernel", t, "2.000", cat="cuda_runtime", args={"correlation": 100 + i}))
        args = {"device": 0, "stream": 7, "correlation": 100 + i}
        events.append(x_event(name, t + 5, f"{dur}.000", cat=cat, pid=0, tid=7, args=args))
    trace = write_kineto(tmp / "families.pt.trace.json", events)
    return resolve_store(trace, tmp / "cache")


def test_kernel_families_throughput_and_diff_agree(store: Path) -> None:
    con = connect(store)
    try:
        result = run_query(con, find_pack("core").query("kernel_families"))
        assert result.error is None
        families = {r["family"]: r["total_ns"] for r in result.frame.iter_rows(named=True)}
        mix = throughput.step_mix(con).row(0, named=True)
    finally:
        con.close()
    assert families == EXPECTED_NS
    assert {f: mix[f"{f}_ns"] for f in throughput.MIX_FAMILIES} == {
        "attention": 60_000,
        "gemm": 50_000,
        "comm": 100_000,
        "other": 15_000,  # elementwise and the copies
    }
    side = Side(store)
    try:
        stats, _ = side.level_stats("family", cross=False)
    finally:
        side.close()
    assert dict(zip(stats["key"].to_list(), stats["total_ns"].to_list(), strict=True)) == EXPECTED_NS

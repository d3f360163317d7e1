-- The kernel family rules, shared by kernel_families.sql and `traceview diff`: a device task belongs to
-- the family of the first rule (lowest priority number) whose pattern matches its name.
family_rules(priority, family, pattern) AS (
  VALUES
    (1, 'comm', '(?i)nccl|rccl|hccl|all_?reduce|all_?gather|reduce_?scatter|all_?to_?all|cross_device_reduce|'
                || 'multimem|sendrecv|broadcast_kernel'),
    (2, 'copy', '(?i)^memcpy|^memset|memcpy_async|direct_copy|copy_kernel'),
    (3, 'kv_cache', '(?i)reshape_?and_?cache|concat_and_cache|store_kvcache|scatter_pa_kv|kv_?cache'),
    (4, 'attention', '(?i)flash|fmha|attention|attn|splitkv|batchdecode|batchprefill|_mla_|paged_?attention'),
    (5, 'gemm', '(?i)gemm|gemv|matmul|xmma|nvjet|cublas|cutlass|cijk_|bmm_|splitkreduce|wgmma|convolution|conv2d|'
                || 'conv3d|winograd|scudnn|implicit_convolve'),
    (6, 'norm', '(?i)rms_?norm|layer_?norm|group_?norm|batch_?norm|instance_?norm|bn_fw|bn_bw|norm_kernel|_norm_|'
                || 'rsqrt|norm2d'),
    (7, 'sampling', '(?i)argmax|top_?k|top_?p|sampling|sampler|multinomial'),
    (8, 'elementwise', '(?i)elementwise|vectorized|unrolled|act_and_mul|silu|gelu|swiglu|relu|sigmoid|tanh|rotary|'
                       || 'rope|index|gather|scatter|embedding|triton_poi|fill|cast|add|mul|div|sub|exp|pow|where|'
                       || 'clamp|copy|cat')
)

// RUN: ds-compile %models/tiny-deepseek-v3 --emit=ds | ds-opt -ds-fusion-mla-project | FileCheck %s
// RUN: ds-compile %models/tiny-deepseek-v2 --emit=ds | ds-opt -ds-fusion-mla-project | FileCheck %s --check-prefix=NOLORA

// The importer's MLA prologue (q LoRA) becomes one op per layer feeding the attention.
// CHECK-LABEL: func.func @forward
// CHECK: %[[QN:.*]], %[[QR:.*]], %[[C:.*]], %[[KR:.*]] = ds.mla_project({{.*}}) {eps = 9.99999997E-7 : f32, kv_a = @model.layers.0.self_attn.kv_a_proj_with_mqa.weight, kv_a_norm = @model.layers.0.self_attn.kv_a_layernorm.weight, q_a = @model.layers.0.self_attn.q_a_proj.weight, q_a_norm = @model.layers.0.self_attn.q_a_layernorm.weight, q_b = @model.layers.0.self_attn.q_b_proj.weight, rope = #ds.rope<{{.*}}interleaved = true, scaling = yarn
// CHECK-NEXT: ds.mla_attention @model.layers.0.self_attn.kv_b_proj.weight(%[[QN]], %[[QR]], %[[C]], %[[KR]]
// CHECK-NOT: ds.slice
// CHECK-NOT: ds.rope %

// Without q LoRA, q_b is the plain q_proj.
// NOLORA: ds.mla_project({{.*}}) {eps = {{.*}}, kv_a = @model.layers.0.self_attn.kv_a_proj_with_mqa.weight, kv_a_norm = @model.layers.0.self_attn.kv_a_layernorm.weight, q_b = @model.layers.0.self_attn.q_proj.weight, rope

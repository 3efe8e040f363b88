// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel=tp=4 | FileCheck %s
// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel=tp=1 | FileCheck %s --check-prefix=TP1
// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel=tp=4 -ds-fusion-qkv-rope -ds-fusion-add-rms-norm -ds-fusion-swiglu-linear -ds-convert-to-kernels | FileCheck %s --check-prefix=PLAN

// A tied-embedding Llama layer over 4 ranks: 8 query heads -> 2 per rank, 2 KV heads -> 1 per
// rank (pieces 2: ranks 0,1 share KV head 0), vocab-parallel embedding and logits.
// CHECK-LABEL: module attributes {ds.tp = 4 : i64}
// CHECK-DAG: ds.weight @embed : tensor<128x16xf32> {name = "embed", shard = array<i64: 0, 4>}
// CHECK-DAG: ds.weight @norm : tensor<16xf32> {name = "norm"}
// CHECK-DAG: ds.weight @wq : tensor<8x16xf32> {name = "wq", shard = array<i64: 0, 4>}
// CHECK-DAG: ds.weight @wk : tensor<4x16xf32> {name = "wk", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @wv : tensor<4x16xf32> {name = "wv", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @wo : tensor<16x8xf32> {name = "wo", shard = array<i64: 1, 4>}
// CHECK-DAG: ds.weight @wg : tensor<6x16xf32> {name = "wg", shard = array<i64: 0, 4>}
// CHECK-DAG: ds.weight @wd : tensor<16x6xf32> {name = "wd", shard = array<i64: 1, 4>}
// CHECK: %[[E:.*]] = ds.embed @embed(%arg0) {rows_per_rank = 128 : i64} : tensor<?xi32> -> tensor<?x16xf32>
// CHECK-NEXT: %[[H:.*]] = ds.all_reduce %[[E]] : tensor<?x16xf32>
// CHECK-NEXT: ds.rms_norm @norm(%[[H]])
// CHECK: ds.linear @wq({{.*}}) : tensor<?x16xf32> -> tensor<?x8xf32>
// CHECK: ds.linear @wk({{.*}}) : tensor<?x16xf32> -> tensor<?x4xf32>
// CHECK: ds.attention {{.*}} : tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?xi32> -> tensor<?x2x4xf32>
// CHECK: %[[O:.*]] = ds.linear @wo({{.*}}) : tensor<?x8xf32> -> tensor<?x16xf32>
// CHECK-NEXT: %[[OR:.*]] = ds.all_reduce %[[O]]
// CHECK-NEXT: %[[H1:.*]] = ds.add %[[H]], %[[OR]]
// CHECK: ds.swiglu {{.*}} : tensor<?x6xf32>
// CHECK: %[[D:.*]] = ds.linear @wd({{.*}}) : tensor<?x6xf32> -> tensor<?x16xf32>
// CHECK-NEXT: ds.all_reduce %[[D]]
// CHECK: %[[L:.*]] = ds.logits @embed({{.*}}) : tensor<?x16xf32> -> tensor<?x128xf32>
// CHECK-NEXT: %[[G:.*]] = ds.all_gather %[[L]] : tensor<?x128xf32> -> tensor<?x512xf32>
// CHECK-NEXT: return %[[G]]
// TP1-NOT: ds.tp
// TP1-NOT: shard
// TP1-NOT: ds.all_reduce
// PLAN-LABEL: func.func @step
// PLAN: dsk.launch embed {{.*}} params {rows_per_rank = 128 : i64}
// PLAN: dsk.launch all_reduce ins(%0 : memref<?x16xf32>)
// PLAN: dsk.launch qkv_rope
// PLAN: dsk.launch logits
// PLAN: dsk.alloc logit_rows : memref<?x512xf32>
// PLAN-NEXT: dsk.launch all_gather ins({{.*}} : memref<?x128xf32>) outs({{.*}} : memref<?x512xf32>)
ds.weight @embed : tensor<512x16xf32> {name = "embed"}
ds.weight @norm : tensor<16xf32> {name = "norm"}
ds.weight @wq : tensor<32x16xf32> {name = "wq"}
ds.weight @wk : tensor<8x16xf32> {name = "wk"}
ds.weight @wv : tensor<8x16xf32> {name = "wv"}
ds.weight @wo : tensor<16x32xf32> {name = "wo"}
ds.weight @wg : tensor<24x16xf32> {name = "wg"}
ds.weight @wu : tensor<24x16xf32> {name = "wu"}
ds.weight @wd : tensor<16x24xf32> {name = "wd"}
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x512xf32> {
  %h = ds.embed @embed(%ids) : tensor<?xi32> -> tensor<?x16xf32>
  %n = ds.rms_norm @norm(%h) {eps = 1.0e-5 : f32} : tensor<?x16xf32>
  %q = ds.linear @wq(%n) : tensor<?x16xf32> -> tensor<?x32xf32>
  %k = ds.linear @wk(%n) : tensor<?x16xf32> -> tensor<?x8xf32>
  %v = ds.linear @wv(%n) : tensor<?x16xf32> -> tensor<?x8xf32>
  %q3 = ds.view %q : tensor<?x32xf32> -> tensor<?x8x4xf32>
  %k3 = ds.view %k : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %v3 = ds.view %v : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %qr = ds.rope %q3, %pos {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x8x4xf32>, tensor<?xi32>
  %kr = ds.rope %k3, %pos {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x2x4xf32>, tensor<?xi32>
  %a = ds.attention %qr, %kr, %v3, %pos, %c {layer = 0 : i64, scale = 0.5 : f32} : tensor<?x8x4xf32>, tensor<?x2x4xf32>, tensor<?x2x4xf32>, tensor<?xi32> -> tensor<?x8x4xf32>
  %a2 = ds.view %a : tensor<?x8x4xf32> -> tensor<?x32xf32>
  %o = ds.linear @wo(%a2) : tensor<?x32xf32> -> tensor<?x16xf32>
  %h1 = ds.add %h, %o : tensor<?x16xf32>
  %g = ds.linear @wg(%h1) : tensor<?x16xf32> -> tensor<?x24xf32>
  %u = ds.linear @wu(%h1) : tensor<?x16xf32> -> tensor<?x24xf32>
  %s = ds.swiglu %g, %u : tensor<?x24xf32>
  %d = ds.linear @wd(%s) : tensor<?x24xf32> -> tensor<?x16xf32>
  %h2 = ds.add %h1, %d : tensor<?x16xf32>
  %l = ds.logits @embed(%h2, rows %rows : tensor<?xi32>) : tensor<?x16xf32> -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// What does not divide stays whole on every rank: 2 query heads over 4 ranks (the attention
// and its projections are replicated, no all_reduce after o_proj) and a vocabulary of 510.
// The MLP still splits.
// CHECK-LABEL: module attributes {ds.tp = 4 : i64}
// CHECK-DAG: ds.weight @embed : tensor<510x16xf32> {name = "embed"}
// CHECK-DAG: ds.weight @wq : tensor<8x16xf32> {name = "wq"}
// CHECK-DAG: ds.weight @wo : tensor<16x8xf32> {name = "wo"}
// CHECK-DAG: ds.weight @wg : tensor<2x16xf32> {name = "wg", shard = array<i64: 0, 4>}
// CHECK: ds.embed @embed(%arg0) : tensor<?xi32> -> tensor<?x16xf32>
// CHECK-NOT: ds.all_reduce
// CHECK: ds.attention {{.*}} -> tensor<?x2x4xf32>
// CHECK: %[[O:.*]] = ds.linear @wo
// CHECK-NEXT: ds.add %{{.*}}, %[[O]]
// CHECK: ds.linear @wd
// CHECK-NEXT: ds.all_reduce
// CHECK: %[[L:.*]] = ds.logits @embed({{.*}}) : tensor<?x16xf32> -> tensor<?x510xf32>
// CHECK-NOT: ds.all_gather
// CHECK: return %[[L]]
ds.weight @embed : tensor<510x16xf32> {name = "embed"}
ds.weight @wq : tensor<8x16xf32> {name = "wq"}
ds.weight @wk : tensor<8x16xf32> {name = "wk"}
ds.weight @wv : tensor<8x16xf32> {name = "wv"}
ds.weight @wo : tensor<16x8xf32> {name = "wo"}
ds.weight @wg : tensor<8x16xf32> {name = "wg"}
ds.weight @wu : tensor<8x16xf32> {name = "wu"}
ds.weight @wd : tensor<16x8xf32> {name = "wd"}
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x510xf32> {
  %h = ds.embed @embed(%ids) : tensor<?xi32> -> tensor<?x16xf32>
  %q = ds.linear @wq(%h) : tensor<?x16xf32> -> tensor<?x8xf32>
  %k = ds.linear @wk(%h) : tensor<?x16xf32> -> tensor<?x8xf32>
  %v = ds.linear @wv(%h) : tensor<?x16xf32> -> tensor<?x8xf32>
  %q3 = ds.view %q : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %k3 = ds.view %k : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %v3 = ds.view %v : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %a = ds.attention %q3, %k3, %v3, %pos, %c {layer = 0 : i64, scale = 0.5 : f32} : tensor<?x2x4xf32>, tensor<?x2x4xf32>, tensor<?x2x4xf32>, tensor<?xi32> -> tensor<?x2x4xf32>
  %a2 = ds.view %a : tensor<?x2x4xf32> -> tensor<?x8xf32>
  %o = ds.linear @wo(%a2) : tensor<?x8xf32> -> tensor<?x16xf32>
  %h1 = ds.add %h, %o : tensor<?x16xf32>
  %g = ds.linear @wg(%h1) : tensor<?x16xf32> -> tensor<?x8xf32>
  %u = ds.linear @wu(%h1) : tensor<?x16xf32> -> tensor<?x8xf32>
  %s = ds.swiglu %g, %u : tensor<?x8xf32>
  %d = ds.linear @wd(%s) : tensor<?x8xf32> -> tensor<?x16xf32>
  %h2 = ds.add %h1, %d : tensor<?x16xf32>
  %l = ds.logits @embed(%h2, rows %rows : tensor<?xi32>) : tensor<?x16xf32> -> tensor<?x510xf32>
  return %l : tensor<?x510xf32>
}

// -----

// DeepSeek MLA + MoE: q_b and kv_b cut by heads, the latent path (kv_a, its norm) and the
// router whole, experts cut inside (gate/up dim 1, down dim 2, shared experts alike).
// CHECK-LABEL: module attributes {ds.tp = 4 : i64}
// CHECK-DAG: ds.weight @q_b : tensor<12x16xf32> {name = "q_b", shard = array<i64: 0, 4>}
// CHECK-DAG: ds.weight @kv_a : tensor<12x16xf32> {name = "kv_a"}
// CHECK-DAG: ds.weight @kv_b : tensor<12x8xf32> {name = "kv_b", shard = array<i64: 0, 4>}
// CHECK-DAG: ds.weight @o : tensor<16x4xf32> {name = "o", shard = array<i64: 1, 4>}
// CHECK-DAG: ds.weight @router : tensor<4x16xf32> {name = "router"}
// CHECK-DAG: ds.weight @eg : tensor<4x2x16xf32> {experts = 4 : i64, name = "eg{e}", shard = array<i64: 1, 4>}
// CHECK-DAG: ds.weight @ed : tensor<4x16x2xf32> {experts = 4 : i64, name = "ed{e}", shard = array<i64: 2, 4>}
// CHECK-DAG: ds.weight @sg : tensor<2x16xf32> {name = "sg", shard = array<i64: 0, 4>}
// CHECK-DAG: ds.weight @sd : tensor<16x2xf32> {name = "sd", shard = array<i64: 1, 4>}
// CHECK: ds.linear @q_b({{.*}}) : tensor<?x16xf32> -> tensor<?x12xf32>
// CHECK: ds.linear @kv_a({{.*}}) : tensor<?x16xf32> -> tensor<?x12xf32>
// CHECK: ds.mla_attention @kv_b({{.*}}) {{.*}} : tensor<?x1x8xf32>, tensor<?x1x4xf32>, tensor<?x8xf32>, tensor<?x4xf32>, tensor<?xi32> -> tensor<?x1x4xf32>
// CHECK: ds.linear @o({{.*}}) : tensor<?x4xf32> -> tensor<?x16xf32>
// CHECK-NEXT: ds.all_reduce
// CHECK: ds.moe_gate @router
// CHECK: %[[M:.*]] = ds.moe_experts
// CHECK-NEXT: ds.all_reduce %[[M]]
ds.weight @q_b : tensor<48x16xf32> {name = "q_b"}
ds.weight @kv_a : tensor<12x16xf32> {name = "kv_a"}
ds.weight @kv_norm : tensor<8xf32> {name = "kv_norm"}
ds.weight @kv_b : tensor<48x8xf32> {name = "kv_b"}
ds.weight @o : tensor<16x16xf32> {name = "o"}
ds.weight @router : tensor<4x16xf32> {name = "router"}
ds.weight @eg : tensor<4x8x16xf32> {name = "eg{e}", experts = 4 : i64}
ds.weight @eu : tensor<4x8x16xf32> {name = "eu{e}", experts = 4 : i64}
ds.weight @ed : tensor<4x16x8xf32> {name = "ed{e}", experts = 4 : i64}
ds.weight @sg : tensor<8x16xf32> {name = "sg"}
ds.weight @su : tensor<8x16xf32> {name = "su"}
ds.weight @sd : tensor<16x8xf32> {name = "sd"}
ds.weight @emb : tensor<32x16xf32> {name = "emb"}
func.func @forward(%tok: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x16xf32> {
  %x = ds.embed @emb(%tok) : tensor<?xi32> -> tensor<?x16xf32>
  %q = ds.linear @q_b(%x) : tensor<?x16xf32> -> tensor<?x48xf32>
  %kv = ds.linear @kv_a(%x) : tensor<?x16xf32> -> tensor<?x12xf32>
  %q3 = ds.view %q : tensor<?x48xf32> -> tensor<?x4x12xf32>
  %qn = ds.slice %q3[0, 8] : tensor<?x4x12xf32> -> tensor<?x4x8xf32>
  %qp = ds.slice %q3[8, 4] : tensor<?x4x12xf32> -> tensor<?x4x4xf32>
  %qr = ds.rope %qp, %pos {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x4x4xf32>, tensor<?xi32>
  %ckv0 = ds.slice %kv[0, 8] : tensor<?x12xf32> -> tensor<?x8xf32>
  %ckv = ds.rms_norm @kv_norm(%ckv0) {eps = 1.0e-6 : f32} : tensor<?x8xf32>
  %kp = ds.slice %kv[8, 4] : tensor<?x12xf32> -> tensor<?x4xf32>
  %a = ds.mla_attention @kv_b(%qn, %qr, %ckv, %kp, %pos, %c) {layer = 0 : i64, scale = 0.25 : f32} : tensor<?x4x8xf32>, tensor<?x4x4xf32>, tensor<?x8xf32>, tensor<?x4xf32>, tensor<?xi32> -> tensor<?x4x4xf32>
  %a2 = ds.view %a : tensor<?x4x4xf32> -> tensor<?x16xf32>
  %o = ds.linear @o(%a2) : tensor<?x16xf32> -> tensor<?x16xf32>
  %h = ds.add %x, %o : tensor<?x16xf32>
  %w, %ids = ds.moe_gate @router(%h) {top_k = 2 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method greedy>, norm_topk_prob = false} : tensor<?x16xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %m = ds.moe_experts(%h, %w, %ids) {gate = @eg, up = @eu, down = @ed, shared_gate = @sg, shared_up = @su, shared_down = @sd} : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  %r = ds.add %h, %m : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

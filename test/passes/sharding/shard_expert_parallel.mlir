// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel="ep=2" | FileCheck %s
// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel="tp=2 ep=2" | FileCheck %s --check-prefix=TPEP
// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel="ep=4" | FileCheck %s --check-prefix=EP4
// RUN: ds-opt %s -split-input-file -ds-shard-tensor-parallel="ep=2" -ds-convert-to-kernels | FileCheck %s --check-prefix=PLAN
// RUN: not ds-opt %s -split-input-file -ds-shard-tensor-parallel="tp=2 ep=4" 2>&1 | FileCheck %s --check-prefix=MISMATCH

// Expert parallelism alone (ep=2, tp=1): 2 ranks; each holds 2 of the 4 routed experts whole
// (stacked weights cut along dimension 0, `experts` the local count), the shared expert is cut
// inside so the ranks' results sum, and nothing else is cut: embedding, linears and router whole.
// CHECK-LABEL: module attributes {ds.ep = 2 : i64, ds.tp = 2 : i64}
// CHECK-DAG: ds.weight @eg : tensor<2x8x16xf32> {experts = 2 : i64, name = "eg{e}", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @eu : tensor<2x8x16xf32> {experts = 2 : i64, name = "eu{e}", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @ed : tensor<2x16x8xf32> {experts = 2 : i64, name = "ed{e}", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @sg : tensor<4x16xf32> {name = "sg", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @su : tensor<4x16xf32> {name = "su", shard = array<i64: 0, 2>}
// CHECK-DAG: ds.weight @sd : tensor<16x4xf32> {name = "sd", shard = array<i64: 1, 2>}
// CHECK-DAG: ds.weight @emb : tensor<32x16xf32> {name = "emb"}
// CHECK-DAG: ds.weight @w1 : tensor<16x16xf32> {name = "w1"}
// CHECK-DAG: ds.weight @router : tensor<4x16xf32> {name = "router"}
// CHECK: %[[X:.*]] = ds.embed @emb(%arg0) : tensor<?xi32> -> tensor<?x16xf32>
// CHECK-NEXT: ds.linear @w1
// CHECK-NOT: ds.all_reduce
// CHECK: ds.moe_gate @router
// CHECK: %[[M:.*]] = ds.moe_experts({{.*}}) {down = @ed, experts_per_rank = 2 : i64, gate = @eg, shared_down = @sd, shared_gate = @sg, shared_up = @su, up = @eu}
// CHECK-NEXT: %[[R:.*]] = ds.all_reduce %[[M]] : tensor<?x16xf32>
// CHECK-NEXT: ds.add %{{.*}}, %[[R]]
// CHECK-NOT: ds.all_gather

// With tp=2 as well, the dense parts are cut as under tensor parallelism.
// TPEP-LABEL: module attributes {ds.ep = 2 : i64, ds.tp = 2 : i64}
// TPEP-DAG: ds.weight @emb : tensor<16x16xf32> {name = "emb", shard = array<i64: 0, 2>}
// TPEP-DAG: ds.weight @eg : tensor<2x8x16xf32> {experts = 2 : i64, name = "eg{e}", shard = array<i64: 0, 2>}
// TPEP: ds.moe_experts({{.*}}experts_per_rank = 2 : i64
// TPEP-NEXT: ds.all_reduce

// 4 ranks: one routed expert each; the shared expert's 8 rows divide 4 ways.
// EP4: ds.weight @eg : tensor<1x8x16xf32> {experts = 1 : i64, name = "eg{e}", shard = array<i64: 0, 4>}
// EP4: experts_per_rank = 1 : i64

// PLAN: dsk.launch moe_experts {{.*}} params {experts_per_rank = 2 : i64}
// PLAN: dsk.launch all_reduce

// MISMATCH: ep 4 must be 1 or equal tp 2
ds.weight @emb : tensor<32x16xf32> {name = "emb"}
ds.weight @w1 : tensor<16x16xf32> {name = "w1"}
ds.weight @router : tensor<4x16xf32> {name = "router"}
ds.weight @eg : tensor<4x8x16xf32> {name = "eg{e}", experts = 4 : i64}
ds.weight @eu : tensor<4x8x16xf32> {name = "eu{e}", experts = 4 : i64}
ds.weight @ed : tensor<4x16x8xf32> {name = "ed{e}", experts = 4 : i64}
ds.weight @sg : tensor<8x16xf32> {name = "sg"}
ds.weight @su : tensor<8x16xf32> {name = "su"}
ds.weight @sd : tensor<16x8xf32> {name = "sd"}
func.func @forward(%tok: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x16xf32> {
  %x = ds.embed @emb(%tok) : tensor<?xi32> -> tensor<?x16xf32>
  %y = ds.linear @w1(%x) : tensor<?x16xf32> -> tensor<?x16xf32>
  %h = ds.add %x, %y : tensor<?x16xf32>
  %w, %ids = ds.moe_gate @router(%h) {top_k = 2 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method greedy>, norm_topk_prob = false} : tensor<?x16xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %m = ds.moe_experts(%h, %w, %ids) {gate = @eg, up = @eu, down = @ed, shared_gate = @sg, shared_up = @su, shared_down = @sd} : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  %r = ds.add %h, %m : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// 3 experts do not divide over 2 ranks: the experts stay whole on every rank, no all_reduce
// (always correct; never a partial sum counted twice).
// CHECK-LABEL: module attributes {ds.ep = 2 : i64, ds.tp = 2 : i64}
// CHECK-DAG: ds.weight @eg : tensor<3x8x16xf32> {experts = 3 : i64, name = "eg{e}"}
// CHECK: ds.moe_experts
// CHECK-NOT: experts_per_rank
// CHECK-NOT: ds.all_reduce
ds.weight @emb : tensor<32x16xf32> {name = "emb"}
ds.weight @router : tensor<3x16xf32> {name = "router"}
ds.weight @eg : tensor<3x8x16xf32> {name = "eg{e}", experts = 3 : i64}
ds.weight @eu : tensor<3x8x16xf32> {name = "eu{e}", experts = 3 : i64}
ds.weight @ed : tensor<3x16x8xf32> {name = "ed{e}", experts = 3 : i64}
func.func @forward(%tok: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @emb(%tok) : tensor<?xi32> -> tensor<?x16xf32>
  %w, %ids = ds.moe_gate @router(%h) {top_k = 2 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method greedy>, norm_topk_prob = false} : tensor<?x16xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %m = ds.moe_experts(%h, %w, %ids) {gate = @eg, up = @eu, down = @ed} : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return %m : tensor<?x16xf32>
}

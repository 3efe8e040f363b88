// RUN: ds-opt %s -split-input-file -ds-convert-to-kernels -verify-diagnostics | FileCheck %s
// RUN: ds-opt %s -split-input-file -ds-convert-to-kernels="kv-block-size=32 kv-cache=fp8" -verify-diagnostics | FileCheck %s --check-prefix=FP8

// Each ds op becomes one launch; views alias; the KV cache becomes the step's fourth argument,
// typed with its geometry (from the attention ops), block size and storage (the pass options),
// which attention launches take; logits land in a logit_rows buffer.
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[IDS:.*]]: memref<?xi32> {ds.name = "token_ids"}, %[[POS:.*]]: memref<?xi32> {ds.name = "positions"}, %[[ROWS:.*]]: memref<?xi32> {ds.name = "logit_rows"}, %[[KV:.*]]: !dsk.kv_cache<gqa, layers = 1, block = 16, kv_heads = 2, head_dim = 4, v_dim = 4, f32> {ds.name = "kv_cache"}) -> memref<?x16xf32>
// FP8-LABEL: func.func @step
// FP8-SAME: !dsk.kv_cache<gqa, layers = 1, block = 32, kv_heads = 2, head_dim = 4, v_dim = 4, f8E4M3FN>
// CHECK-NOT: func.func @forward
// CHECK: %[[H:.*]] = dsk.alloc tokens : memref<?x8xf32>
// CHECK: dsk.launch embed ins(%[[IDS]] : memref<?xi32>) outs(%[[H]] : memref<?x8xf32>) weights [@e] params {}
// CHECK: %[[Q:.*]] = dsk.alloc tokens : memref<?x8xf32>
// CHECK: dsk.launch linear ins(%[[H]] : memref<?x8xf32>) outs(%[[Q]] : memref<?x8xf32>) weights [@wq, @bq] params {}
// CHECK: %[[V:.*]] = dsk.view %[[Q]] : memref<?x8xf32> -> memref<?x2x4xf32>
// CHECK: %[[R:.*]] = dsk.alloc tokens : memref<?x2x4xf32>
// CHECK: dsk.launch rope ins(%[[V]], %[[POS]] : {{.*}}) outs(%[[R]] : {{.*}}) weights [] params {rope = #ds.rope<theta = 1.000000e+04, dim = 4>}
// CHECK: dsk.launch attention kv(%[[KV]] : !dsk.kv_cache<{{.*}}>) ins(%[[R]], %[[R]], %[[R]], %[[POS]] : {{.*}}) outs({{.*}}) weights [] params {layer = 0 : i64, scale = 5.000000e-01 : f32}
// CHECK: %[[L:.*]] = dsk.alloc logit_rows : memref<?x16xf32>
// CHECK: dsk.launch logits ins(%{{.*}}, %[[ROWS]] : memref<?x8xf32>, memref<?xi32>) outs(%[[L]] : memref<?x16xf32>) weights [@e]
// CHECK: return %[[L]]
ds.weight @e : tensor<16x8xf32> {name = "e"}
ds.weight @wq : tensor<8x8xf32> {name = "wq"}
ds.weight @bq : tensor<8xf32> {name = "bq"}
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @e(%ids) : tensor<?xi32> -> tensor<?x8xf32>
  %q = ds.linear @wq(%h) {bias = @bq} : tensor<?x8xf32> -> tensor<?x8xf32>
  %q3 = ds.view %q : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %r = ds.rope %q3, %pos {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x2x4xf32>, tensor<?xi32>
  %a = ds.attention %r, %r, %r, %pos, %c {layer = 0 : i64, scale = 0.5 : f32} : tensor<?x2x4xf32>, tensor<?x2x4xf32>, tensor<?x2x4xf32>, tensor<?xi32> -> tensor<?x2x4xf32>
  %a2 = ds.view %a : tensor<?x2x4xf32> -> tensor<?x8xf32>
  %l = ds.logits @e(%a2, rows %rows : tensor<?xi32>) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// The router's two results get one buffer each; optional weights keep their order. Without
// attention the step has no KV cache argument.
// CHECK-LABEL: func.func @step
// CHECK-SAME: {ds.name = "logit_rows"}) -> memref<?x16xf32>
// CHECK: %[[W:.*]] = dsk.alloc tokens : memref<?x2xf32>
// CHECK: %[[I:.*]] = dsk.alloc tokens : memref<?x2xi32>
// CHECK: dsk.launch moe_gate ins({{.*}}) outs(%[[W]], %[[I]] : memref<?x2xf32>, memref<?x2xi32>) weights [@g, @b] params {n_group = 1 : i64, norm_topk_prob = true, routed_scaling_factor = 1.000000e+00 : f32, scoring = #ds<moe_scoring sigmoid>, top_k = 2 : i64, topk_group = 1 : i64, topk_method = #ds<moe_topk_method noaux_tc>}
// CHECK: dsk.launch moe_experts ins({{.*}}, %[[W]], %[[I]] : {{.*}}) outs({{.*}}) weights [@eg, @eu, @ed]
ds.weight @e : tensor<16x8xf32> {name = "e"}
ds.weight @g : tensor<4x8xf32> {name = "g"}
ds.weight @b : tensor<4xf32> {name = "b"}
ds.weight @eg : tensor<4x6x8xf32> {name = "x.{e}.g", experts = 4}
ds.weight @eu : tensor<4x6x8xf32> {name = "x.{e}.u", experts = 4}
ds.weight @ed : tensor<4x8x6xf32> {name = "x.{e}.d", experts = 4}
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @e(%ids) : tensor<?xi32> -> tensor<?x8xf32>
  %w, %i = ds.moe_gate @g(%h) {top_k = 2 : i64, scoring = #ds<moe_scoring sigmoid>, topk_method = #ds<moe_topk_method noaux_tc>, norm_topk_prob = true, correction_bias = @b} : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %m = ds.moe_experts(%h, %w, %i) {gate = @eg, up = @eu, down = @ed} : tensor<?x8xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x8xf32>
  %l = ds.logits @e(%m, rows %rows : tensor<?xi32>) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// Without the model's entry point there is nothing to lower.
// expected-error @+1 {{expected a func.func @forward to lower}}
module {
  func.func @other() {
    return
  }
}

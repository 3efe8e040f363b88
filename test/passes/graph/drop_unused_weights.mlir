// RUN: ds-opt %s -split-input-file -ds-graph-drop-unused-weights | FileCheck %s

// Unreferenced declarations go; referenced ones stay.
// CHECK-LABEL: module
// CHECK: ds.weight @used
// CHECK-NOT: ds.weight @dead
ds.weight @used : tensor<4x4xf32> {name = "used"}
ds.weight @dead : tensor<4x4xf32> {name = "dead"}
func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %y = ds.linear @used(%x) : tensor<?x4xf32> -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// A used block-scaled weight keeps its scale; an unused one loses both.
// CHECK-LABEL: module
// CHECK-DAG: ds.weight @w_scale
// CHECK-DAG: ds.weight @w :
// CHECK-NOT: @unused
ds.weight @w : tensor<4x4xf8E4M3FN> {name = "w", scale = @w_scale, block = array<i64: 128, 128>}
ds.weight @w_scale : tensor<1x1xf32> {name = "w_scale_inv"}
ds.weight @unused : tensor<4x4xf8E4M3FN> {name = "u", scale = @unused_scale, block = array<i64: 128, 128>}
ds.weight @unused_scale : tensor<1x1xf32> {name = "u_scale_inv"}
func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %y = ds.linear @w(%x) : tensor<?x4xf32> -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Optional references (bias, correction bias, shared experts) count as uses.
// CHECK-LABEL: module
// CHECK-DAG: ds.weight @g
// CHECK-DAG: ds.weight @bias
ds.weight @g : tensor<8x4xf32> {name = "g"}
ds.weight @bias : tensor<8xf32> {name = "bias"}
func.func @f(%x: tensor<?x4xf32>) -> tensor<?x2xi32> {
  %w, %i = ds.moe_gate @g(%x) {top_k = 2 : i64, scoring = #ds<moe_scoring sigmoid>, topk_method = #ds<moe_topk_method noaux_tc>, norm_topk_prob = true, correction_bias = @bias} : tensor<?x4xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %i : tensor<?x2xi32>
}

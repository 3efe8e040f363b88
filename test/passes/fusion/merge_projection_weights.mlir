// RUN: ds-opt %s -split-input-file -ds-fusion-merge-projection-weights -ds-graph-drop-unused-weights | FileCheck %s

// q/k/v with biases and gate/up: one stacked weight (and bias) per fused op, the parts dropped.
// CHECK-LABEL: module
// CHECK-NOT: ds.weight @wq :
// CHECK-DAG: ds.weight @wq.merged_qkv : tensor<16x8xf32> {concat = ["wq", "wk", "wv"], name = "wq"}
// CHECK-DAG: ds.weight @bq.merged_qkv_bias : tensor<16xf32> {concat = ["bq", "bk", "bv"], name = "bq"}
// CHECK-DAG: ds.weight @g.merged_gate_up : tensor<24x8xf32> {concat = ["g", "u"], name = "g"}
// CHECK: ds.qkv_rope @wq.merged_qkv, @wq.merged_qkv, @wq.merged_qkv(%arg0, %arg1) {bk = @bq.merged_qkv_bias, bq = @bq.merged_qkv_bias, bv = @bq.merged_qkv_bias
// CHECK: ds.swiglu_linear @g.merged_gate_up, @g.merged_gate_up(%arg0) : tensor<?x8xf32> -> tensor<?x12xf32>
ds.weight @wq : tensor<8x8xf32> {name = "wq"}
ds.weight @wk : tensor<4x8xf32> {name = "wk"}
ds.weight @wv : tensor<4x8xf32> {name = "wv"}
ds.weight @bq : tensor<8xf32> {name = "bq"}
ds.weight @bk : tensor<4xf32> {name = "bk"}
ds.weight @bv : tensor<4xf32> {name = "bv"}
ds.weight @g : tensor<12x8xf32> {name = "g"}
ds.weight @u : tensor<12x8xf32> {name = "u"}
func.func @f(%x: tensor<?x8xf32>, %pos: tensor<?xi32>) -> (tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?x12xf32>) {
  %q, %k, %v = ds.qkv_rope @wq, @wk, @wv(%x, %pos) {bq = @bq, bk = @bk, bv = @bv, rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x8xf32>, tensor<?xi32> -> tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>
  %s = ds.swiglu_linear @g, @u(%x) : tensor<?x8xf32> -> tensor<?x12xf32>
  return %q, %k, %v, %s : tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?x12xf32>
}

// -----

// Left alone: a part also used by another op, tensor-parallel shards, FP8 block-scaled parts.
// CHECK-LABEL: module
// CHECK-NOT: merged
// CHECK: ds.swiglu_linear @g, @u
// CHECK: ds.linear @u
// CHECK: ds.swiglu_linear @sg, @su
// CHECK: ds.swiglu_linear @fg, @fu
module attributes {ds.tp = 2 : i64} {
  ds.weight @g : tensor<12x8xf32> {name = "g"}
  ds.weight @u : tensor<12x8xf32> {name = "u"}
  ds.weight @sg : tensor<6x8xf32> {name = "sg", shard = array<i64: 0, 2>}
  ds.weight @su : tensor<6x8xf32> {name = "su", shard = array<i64: 0, 2>}
  ds.weight @fg : tensor<128x128xf8E4M3FN> {name = "fg", scale = @fgs, block = array<i64: 128, 128>}
  ds.weight @fgs : tensor<1x1xf32> {name = "fgs"}
  ds.weight @fu : tensor<128x128xf8E4M3FN> {name = "fu", scale = @fus, block = array<i64: 128, 128>}
  ds.weight @fus : tensor<1x1xf32> {name = "fus"}
  func.func @f(%x: tensor<?x8xf32>, %y: tensor<?x128xf32>) -> (tensor<?x12xf32>, tensor<?x12xf32>, tensor<?x6xf32>, tensor<?x128xf32>) {
    %s = ds.swiglu_linear @g, @u(%x) : tensor<?x8xf32> -> tensor<?x12xf32>
    %l = ds.linear @u(%x) : tensor<?x8xf32> -> tensor<?x12xf32>
    %t = ds.swiglu_linear @sg, @su(%x) : tensor<?x8xf32> -> tensor<?x6xf32>
    %f = ds.swiglu_linear @fg, @fu(%y) : tensor<?x128xf32> -> tensor<?x128xf32>
    return %s, %l, %t, %f : tensor<?x12xf32>, tensor<?x12xf32>, tensor<?x6xf32>, tensor<?x128xf32>
  }
}

// RUN: ds-opt %s -split-input-file -ds-fusion-qkv-rope | FileCheck %s

// Projections, views and ropes of an attention's q/k/v become one op (biases carried along).
// CHECK-LABEL: func.func @qwen2_attention
// CHECK: %[[Q:.*]], %[[K:.*]], %[[V:.*]] = ds.qkv_rope @wq, @wk, @wv(%arg0, %arg1) {bk = @bk, bq = @bq, bv = @bv, rope = #ds.rope<theta = 1.000000e+06, dim = 4>}
// CHECK-NOT: ds.linear @wq
// CHECK-NOT: ds.rope %
// CHECK: ds.attention %[[Q]], %[[K]], %[[V]], %arg1
ds.weight @wq : tensor<8x8xf32> {name = "wq"}
ds.weight @wk : tensor<4x8xf32> {name = "wk"}
ds.weight @wv : tensor<4x8xf32> {name = "wv"}
ds.weight @bq : tensor<8xf32> {name = "bq"}
ds.weight @bk : tensor<4xf32> {name = "bk"}
ds.weight @bv : tensor<4xf32> {name = "bv"}
func.func @qwen2_attention(%x: tensor<?x8xf32>, %pos: tensor<?xi32>, %c: !ds.kv_cache) -> tensor<?x2x4xf32> {
  %q = ds.linear @wq(%x) {bias = @bq} : tensor<?x8xf32> -> tensor<?x8xf32>
  %k = ds.linear @wk(%x) {bias = @bk} : tensor<?x8xf32> -> tensor<?x4xf32>
  %v = ds.linear @wv(%x) {bias = @bv} : tensor<?x8xf32> -> tensor<?x4xf32>
  %q3 = ds.view %q : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %qr = ds.rope %q3, %pos {rope = #ds.rope<theta = 1000000.0, dim = 4>} : tensor<?x2x4xf32>, tensor<?xi32>
  %k3 = ds.view %k : tensor<?x4xf32> -> tensor<?x1x4xf32>
  %kr = ds.rope %k3, %pos {rope = #ds.rope<theta = 1000000.0, dim = 4>} : tensor<?x1x4xf32>, tensor<?xi32>
  %v3 = ds.view %v : tensor<?x4xf32> -> tensor<?x1x4xf32>
  %a = ds.attention %qr, %kr, %v3, %pos, %c {layer = 0 : i64, scale = 0.5 : f32} : tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?xi32> -> tensor<?x2x4xf32>
  return %a : tensor<?x2x4xf32>
}

// -----

// Different ropes on q and k (or a bias on only one projection) are not fused.
// CHECK-LABEL: func.func @mismatch
// CHECK-NOT: ds.qkv_rope
ds.weight @wq : tensor<8x8xf32> {name = "wq"}
ds.weight @wk : tensor<4x8xf32> {name = "wk"}
ds.weight @wv : tensor<4x8xf32> {name = "wv"}
func.func @mismatch(%x: tensor<?x8xf32>, %pos: tensor<?xi32>, %c: !ds.kv_cache) -> tensor<?x2x4xf32> {
  %q = ds.linear @wq(%x) : tensor<?x8xf32> -> tensor<?x8xf32>
  %k = ds.linear @wk(%x) : tensor<?x8xf32> -> tensor<?x4xf32>
  %v = ds.linear @wv(%x) : tensor<?x8xf32> -> tensor<?x4xf32>
  %q3 = ds.view %q : tensor<?x8xf32> -> tensor<?x2x4xf32>
  %qr = ds.rope %q3, %pos {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x2x4xf32>, tensor<?xi32>
  %k3 = ds.view %k : tensor<?x4xf32> -> tensor<?x1x4xf32>
  %kr = ds.rope %k3, %pos {rope = #ds.rope<theta = 500000.0, dim = 4>} : tensor<?x1x4xf32>, tensor<?xi32>
  %v3 = ds.view %v : tensor<?x4xf32> -> tensor<?x1x4xf32>
  %a = ds.attention %qr, %kr, %v3, %pos, %c {layer = 0 : i64, scale = 0.5 : f32} : tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>, tensor<?xi32> -> tensor<?x2x4xf32>
  return %a : tensor<?x2x4xf32>
}

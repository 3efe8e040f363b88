// RUN: ds-opt %s -split-input-file -ds-fusion-swiglu-linear | FileCheck %s

// Gate and up projections of one input feeding swiglu become one op.
// CHECK-LABEL: func.func @mlp
// CHECK: %[[S:.*]] = ds.swiglu_linear @wg, @wu(%arg0) : tensor<?x8xf32> -> tensor<?x16xf32>
// CHECK-NOT: ds.swiglu %
// CHECK: ds.linear @wd(%[[S]])
ds.weight @wg : tensor<16x8xf32> {name = "g"}
ds.weight @wu : tensor<16x8xf32> {name = "u"}
ds.weight @wd : tensor<8x16xf32> {name = "d"}
func.func @mlp(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %g = ds.linear @wg(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  %u = ds.linear @wu(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  %s = ds.swiglu %g, %u : tensor<?x16xf32>
  %d = ds.linear @wd(%s) : tensor<?x16xf32> -> tensor<?x8xf32>
  return %d : tensor<?x8xf32>
}

// -----

// A projection with another user, or a bias, or a different input is left alone.
// CHECK-LABEL: func.func @no_fusion
// CHECK-NOT: ds.swiglu_linear
// CHECK-COUNT-3: ds.swiglu %
ds.weight @wg : tensor<16x8xf32> {name = "g"}
ds.weight @wu : tensor<16x8xf32> {name = "u"}
ds.weight @b : tensor<16xf32> {name = "b"}
func.func @no_fusion(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  %g = ds.linear @wg(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  %u = ds.linear @wu(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  %s = ds.swiglu %g, %u : tensor<?x16xf32>
  %gb = ds.linear @wg(%x) {bias = @b} : tensor<?x8xf32> -> tensor<?x16xf32>
  %u2 = ds.linear @wu(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  %s2 = ds.swiglu %gb, %u2 : tensor<?x16xf32>
  %g3 = ds.linear @wg(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  %u3 = ds.linear @wu(%y) : tensor<?x8xf32> -> tensor<?x16xf32>
  %s3 = ds.swiglu %g3, %u3 : tensor<?x16xf32>
  return %s, %s2, %s3, %g : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}

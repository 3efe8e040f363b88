// RUN: ds-opt %s -split-input-file -ds-fusion-all-reduce-add-rms-norm | FileCheck %s

// The row-parallel projection's partial sum goes straight into the fused add + norm.
// CHECK-LABEL: func.func @rhs
// CHECK-NOT: ds.all_reduce
// CHECK: %{{.*}}, %{{.*}} = ds.add_rms_norm @n(%arg0, %arg1) {all_reduce_rhs, eps = 9.99999974E-6 : f32} : tensor<?x8xf32>
ds.weight @n : tensor<8xf32> {name = "n"}
func.func @rhs(%h: tensor<?x8xf32>, %partial: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %r = ds.all_reduce %partial : tensor<?x8xf32>
  %s, %y = ds.add_rms_norm @n(%h, %r) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return %s, %y : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// A reduced lhs moves to the rhs slot (IEEE addition commutes exactly).
// CHECK-LABEL: func.func @lhs
// CHECK-NOT: ds.all_reduce
// CHECK: ds.add_rms_norm @n(%arg1, %arg0) {all_reduce_rhs, eps = 9.99999974E-6 : f32}
ds.weight @n : tensor<8xf32> {name = "n"}
func.func @lhs(%partial: tensor<?x8xf32>, %h: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %r = ds.all_reduce %partial : tensor<?x8xf32>
  %s, %y = ds.add_rms_norm @n(%r, %h) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// The reduced value is used elsewhere too (it must exist on its own): nothing changes. Neither
// does a norm whose operands are both plain values, nor one already carrying the reduction.
// CHECK-LABEL: func.func @shared
// CHECK: %[[R:.*]] = ds.all_reduce %arg1
// CHECK: ds.add_rms_norm @n(%arg0, %[[R]]) {eps
// CHECK: ds.add_rms_norm @n(%arg0, %arg0) {eps
// CHECK: ds.add_rms_norm @n(%arg0, %arg1) {all_reduce_rhs, eps
ds.weight @n : tensor<8xf32> {name = "n"}
func.func @shared(%h: tensor<?x8xf32>, %partial: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %r = ds.all_reduce %partial : tensor<?x8xf32>
  %s, %y = ds.add_rms_norm @n(%h, %r) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  %s2, %y2 = ds.add_rms_norm @n(%h, %h) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  %s3, %y3 = ds.add_rms_norm @n(%h, %partial) {all_reduce_rhs, eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return %r, %y, %y2, %y3 : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>
}

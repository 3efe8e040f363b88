// RUN: ds-opt %s -split-input-file -ds-fusion-add-rms-norm | FileCheck %s

// The residual sum feeds the norm and the next residual add: both results are used.
// CHECK-LABEL: func.func @layer
// CHECK: %[[S:.*]], %[[N:.*]] = ds.add_rms_norm @w(%arg0, %arg1) {eps = 9.99999974E-6 : f32} : tensor<?x8xf32>
// CHECK-NOT: ds.rms_norm
// CHECK-NOT: ds.add %arg0
// CHECK: ds.add %[[S]], %[[N]]
ds.weight @w : tensor<8xf32> {name = "w"}
func.func @layer(%h: tensor<?x8xf32>, %o: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %s = ds.add %h, %o : tensor<?x8xf32>
  %n = ds.rms_norm @w(%s) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  %r = ds.add %s, %n : tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

// -----

// A norm of something that is not an add stays as it is.
// CHECK-LABEL: func.func @plain
// CHECK: ds.rms_norm @w(%arg0)
// CHECK-NOT: ds.add_rms_norm
ds.weight @w : tensor<8xf32> {name = "w"}
func.func @plain(%h: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %n = ds.rms_norm @w(%h) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return %n : tensor<?x8xf32>
}

// -----

// Two norms of one sum: the first fuses, the second reads the fused sum.
// CHECK-LABEL: func.func @two_norms
// CHECK: %[[S:.*]], %{{.*}} = ds.add_rms_norm @w1
// CHECK: ds.rms_norm @w2(%[[S]])
ds.weight @w1 : tensor<8xf32> {name = "w1"}
ds.weight @w2 : tensor<8xf32> {name = "w2"}
func.func @two_norms(%h: tensor<?x8xf32>, %o: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %s = ds.add %h, %o : tensor<?x8xf32>
  %a = ds.rms_norm @w1(%s) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  %b = ds.rms_norm @w2(%s) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return %a, %b : tensor<?x8xf32>, tensor<?x8xf32>
}

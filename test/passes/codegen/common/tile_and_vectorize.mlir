// RUN: ds-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(ds-codegen-tile-and-vectorize{vector-width=8}))' -verify-diagnostics | FileCheck %s

// Elementwise over [rows, 64]: one row per iteration, 8 columns per vector, no masks (64 = 8 x 8).
// CHECK-LABEL: func.func @add
// CHECK-NOT: linalg.generic
// CHECK: scf.for %[[R:.*]] = %{{.*}} to %{{.*}} step %c1
// CHECK: scf.for %[[C:.*]] = %{{.*}} to %c64 step %c8
// CHECK: vector.transfer_read {{.*}} : memref<8xf32, {{.*}}>, vector<8xf32>
// CHECK: vector.transfer_read {{.*}} : memref<8xf32, {{.*}}>, vector<8xf32>
// CHECK: arith.addf {{.*}} : vector<8xf32>
// CHECK: vector.transfer_write {{.*}} : vector<8xf32>, memref<8xf32, {{.*}}>
// CHECK-NOT: vector.mask
#id = affine_map<(r, c) -> (r, c)>
func.func @add(%a: memref<?x64xf32>, %b: memref<?x64xf32>, %y: memref<?x64xf32>) {
  linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%y : memref<?x64xf32>) {
  ^bb0(%x: f32, %z: f32, %o: f32):
    %s = arith.addf %x, %z : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// 172 columns: the last tile of 4 is a masked vector of 8.
// CHECK-LABEL: func.func @tail
// CHECK: scf.for {{.*}} to %c172 step %c8
// CHECK: affine.min
// CHECK: vector.create_mask
// CHECK: vector.mask {{.*}} vector.transfer_read
// CHECK: math.exp {{.*}} : vector<8xf32>
// CHECK: vector.mask {{.*}} vector.transfer_write
#id = affine_map<(r, c) -> (r, c)>
func.func @tail(%a: memref<?x172xf32>, %y: memref<?x172xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<?x172xf32>) outs(%y : memref<?x172xf32>) {
  ^bb0(%x: f32, %o: f32):
    %e = math.exp %x : f32
    linalg.yield %e : f32
  }
  return
}

// -----

// A row reduction keeps one accumulator per row: a multi_reduction of 8 lanes into the running
// sum read from and written back to the row's accumulator.
// CHECK-LABEL: func.func @sum_of_squares
// CHECK: scf.for {{.*}} step %c1
// CHECK: scf.for {{.*}} to %c64 step %c8
// CHECK: vector.transfer_read %{{.*}}[]{{.*}} : memref<f32, {{.*}}>, vector<f32>
// CHECK: arith.mulf {{.*}} : vector<8xf32>
// CHECK: vector.multi_reduction <add>
// CHECK: vector.transfer_write {{.*}} : vector<f32>, memref<f32, {{.*}}>
func.func @sum_of_squares(%x: memref<?x64xf32>, %acc: memref<?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(r, c) -> (r, c)>, affine_map<(r, c) -> (r)>],
                  iterator_types = ["parallel", "reduction"]}
      ins(%x : memref<?x64xf32>) outs(%acc : memref<?xf32>) {
  ^bb0(%v: f32, %o: f32):
    %sq = arith.mulf %v, %v : f32
    %s = arith.addf %o, %sq : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Negative: ops on tensors are not buffers of a kernel and stay as they are.
// CHECK-LABEL: func.func @tensors
// CHECK: linalg.generic
// CHECK-NOT: vector.
#id = affine_map<(r, c) -> (r, c)>
func.func @tensors(%a: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : tensor<4x8xf32>) outs(%a : tensor<4x8xf32>) {
  ^bb0(%x: f32, %o: f32):
    %s = arith.addf %x, %x : f32
    linalg.yield %s : f32
  } -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// -----

// Negative: a vector width below 1 is an error.
// RUN: not ds-opt %s -split-input-file -pass-pipeline='builtin.module(func.func(ds-codegen-tile-and-vectorize{vector-width=0}))' 2>&1 | FileCheck %s --check-prefix=WIDTH
// WIDTH: vector-width must be at least 1, got 0
func.func @width() {
  return
}

// -----

// Without vector-width the width is the f32 lanes of the closest #ds.target: x86-64 (128-bit
// vectors) tiles by 4, x86-64-v3 (256-bit) by 8.
// RUN: ds-opt %s -split-input-file -pass-pipeline='builtin.module(builtin.module(func.func(ds-codegen-tile-and-vectorize)))' | FileCheck %s --check-prefix=TARGET
// TARGET-LABEL: func.func @sse2
// TARGET: scf.for {{.*}} to %c64 step %c4
// TARGET: arith.addf {{.*}} : vector<4xf32>
#id2 = affine_map<(r, c) -> (r, c)>
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
  module @ds_kernels attributes {ds.codegen} {
    func.func @sse2(%a: memref<?x64xf32>, %b: memref<?x64xf32>, %y: memref<?x64xf32>) {
      linalg.generic {indexing_maps = [#id2, #id2, #id2], iterator_types = ["parallel", "parallel"]}
          ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%y : memref<?x64xf32>) {
      ^bb0(%x: f32, %z: f32, %o: f32):
        %s = arith.addf %x, %z : f32
        linalg.yield %s : f32
      }
      return
    }
  }
}

// -----

// TARGET-LABEL: func.func @avx2
// TARGET: scf.for {{.*}} to %c64 step %c8
// TARGET: arith.addf {{.*}} : vector<8xf32>
#id3 = affine_map<(r, c) -> (r, c)>
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64-v3", features = ["avx2"], vector_bits = 256>} {
  module @ds_kernels attributes {ds.codegen} {
    func.func @avx2(%a: memref<?x64xf32>, %b: memref<?x64xf32>, %y: memref<?x64xf32>) {
      linalg.generic {indexing_maps = [#id3, #id3, #id3], iterator_types = ["parallel", "parallel"]}
          ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%y : memref<?x64xf32>) {
      ^bb0(%x: f32, %z: f32, %o: f32):
        %s = arith.addf %x, %z : f32
        linalg.yield %s : f32
      }
      return
    }
  }
}

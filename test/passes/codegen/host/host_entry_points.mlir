// RUN: ds-opt %s -split-input-file -ds-codegen-host-entry-points -verify-diagnostics | FileCheck %s

// A lowered kernel of two [rows, 64] buffers and a 64-wide weight, rows = 4 x the step's rows:
// the entry loads each pointer and passes (ptr, ptr, 0, sizes, strides) per memref.
// CHECK-LABEL: llvm.func @ds_rms_norm_0(
// CHECK-SAME: %[[BUFS:.*]]: !llvm.ptr, %[[WS:.*]]: !llvm.ptr, %[[ROWS:.*]]: i64)
// CHECK-SAME: ds.entry = "rms_norm"
// CHECK: %[[SCALE:.*]] = llvm.mlir.constant(4 : i64)
// CHECK: %[[N:.*]] = llvm.mul %[[ROWS]], %[[SCALE]]
// CHECK: %[[S0:.*]] = llvm.getelementptr %[[BUFS]][0]
// CHECK: %[[P0:.*]] = llvm.load %[[S0]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[S1:.*]] = llvm.getelementptr %[[BUFS]][1]
// CHECK: %[[P1:.*]] = llvm.load %[[S1]]
// CHECK: %[[S2:.*]] = llvm.getelementptr %[[WS]][0]
// CHECK: %[[P2:.*]] = llvm.load %[[S2]]
// CHECK: llvm.call @ds_rms_norm_0_impl(%[[P0]], %[[P0]], %{{.*}}, %[[N]], %{{.*}}, %{{.*}}, %{{.*}}, %[[P1]], %[[P1]], %{{.*}}, %[[N]], {{.*}}, %[[P2]], %[[P2]],
// CHECK: llvm.return
// CHECK: llvm.func internal @ds_rms_norm_0_impl
module {
  llvm.func @ds_rms_norm_0(%a0: !llvm.ptr, %a1: !llvm.ptr, %o0: i64, %n0: i64, %c0: i64, %s0: i64, %t0: i64,
                           %b0: !llvm.ptr, %b1: !llvm.ptr, %o1: i64, %n1: i64, %c1: i64, %s1: i64, %t1: i64,
                           %w0: !llvm.ptr, %w1: !llvm.ptr, %o2: i64, %n2: i64, %t2: i64)
      attributes {ds.kernel = "rms_norm", ds.num_buffers = 2 : i64, ds.row_scale = 4 : i64,
                  ds.arg_shapes = [array<i64: -9223372036854775808, 64>, array<i64: -9223372036854775808, 64>, array<i64: 64>]} {
    llvm.return
  }
}

// -----

// Negative: a kernel whose arguments do not match its recorded memref shapes.
module {
  // expected-error @+1 {{lowered kernel takes 1 arguments, its memref descriptors need 7}}
  llvm.func @bad(%a0: !llvm.ptr) attributes {ds.kernel = "add", ds.num_buffers = 1 : i64, ds.row_scale = 1 : i64,
                                              ds.arg_shapes = [array<i64: -9223372036854775808, 64>]} {
    llvm.return
  }
}

// -----

// Negative: kernel attributes missing.
module {
  // expected-error @+1 {{generated kernel lacks ds.arg_shapes/ds.num_buffers/ds.row_scale}}
  llvm.func @bare(%a0: !llvm.ptr) attributes {ds.kernel = "add"} {
    llvm.return
  }
}

// -----

// Functions that are not generated kernels are left alone.
// CHECK-LABEL: llvm.func @helper(
// CHECK-NOT: _impl
module {
  llvm.func @helper(%a0: !llvm.ptr) {
    llvm.return
  }
}

// -----

// Negative: host entry points in a module compiled for another backend (#ds.target).
// expected-error @+1 {{ds-codegen-host-entry-points: #ds.target 'sm_90a' has backend = nvptx; host entry points need backend = host}}
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  llvm.func @ds_add_0(%a0: !llvm.ptr) {
    llvm.return
  }
}

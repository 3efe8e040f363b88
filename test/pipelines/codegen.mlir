// The Codegen phase (ds-compile --compile-to=codegen|llvm) as one pipeline: kernels outlined from
// the plan (passes/codegen/common), then lowered inside @ds_kernels for the #ds.target (host:
// tiling by its vector width, LLVM dialect, C entry points from passes/codegen/host).
// RUN: ds-opt %s -split-input-file --ds-pipeline-codegen -verify-diagnostics | FileCheck %s
// RUN: ds-opt %s -split-input-file --ds-pipeline-codegen="lower-to-llvm=false" | FileCheck %s --check-prefix=OUTLINE

// x86-64 (128-bit vectors): the add kernel is tiled by 4 f32 lanes and gets its entry point.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch add {{.*}} {code_symbol = "ds_add_0"}
// CHECK: module @ds_kernels attributes {ds.codegen}
// CHECK-DAG: llvm.func internal @ds_add_0_impl
// CHECK-DAG: llvm.load {{.*}} -> vector<4xf32>
// CHECK-DAG: llvm.func @ds_add_0(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64) attributes {ds.entry = "add"}
// CHECK-NOT: linalg.generic
// OUTLINE-LABEL: func.func @step
// OUTLINE: module @ds_kernels attributes {ds.codegen}
// OUTLINE: func.func @ds_add_0
// OUTLINE: linalg.generic
// OUTLINE-NOT: llvm.func
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xf32>
    %b = dsk.alloc tokens : memref<?x64xf32>
    %s = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%s : memref<?x64xf32>) weights [] params {}
    return %s : memref<?x64xf32>
  }
}

// -----

// x86-64-v3: 8 lanes.
// CHECK-LABEL: func.func @step
// CHECK: llvm.load {{.*}} -> vector<8xf32>
// OUTLINE-LABEL: func.func @step
// OUTLINE: func.func @ds_add_0
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64-v3", features = ["avx2", "fma"], vector_bits = 256>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xf32>
    %b = dsk.alloc tokens : memref<?x64xf32>
    %s = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%s : memref<?x64xf32>) weights [] params {}
    return %s : memref<?x64xf32>
  }
}

// -----

// A plan without elementwise or norm launches has nothing to generate.
// CHECK-LABEL: func.func @step
// CHECK-NOT: ds_kernels
// OUTLINE-LABEL: func.func @step
// OUTLINE-NOT: ds_kernels
ds.weight @e : tensor<16x8xf32> {name = "e"}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x8xf32> {
  %h = dsk.alloc tokens : memref<?x8xf32>
  dsk.launch embed ins(%ids : memref<?xi32>) outs(%h : memref<?x8xf32>) weights [@e] params {}
  return %h : memref<?x8xf32>
}

// -----

// Negative: the host lowering refuses a module compiled for the nvptx backend (outlining is
// target independent: lower-to-llvm=false serves it).
// OUTLINE-LABEL: module attributes {ds.target = #ds.target<name = "sm_90a"
// OUTLINE: module @ds_kernels
// expected-error @+1 {{ds-codegen-host-entry-points: #ds.target 'sm_90a' has backend = nvptx; host entry points need backend = host}}
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xf32>
    %b = dsk.alloc tokens : memref<?x64xf32>
    %s = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%s : memref<?x64xf32>) weights [] params {}
    return %s : memref<?x64xf32>
  }
}

// Negative: options are checked.
// RUN: not ds-opt %s --ds-pipeline-codegen="lower-to-llvm=perhaps" 2>&1 | FileCheck %s --check-prefix=BADOPT
// BADOPT: lower-to-llvm
// RUN: not ds-opt %s --ds-pipeline-codegen="vector-width=4" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: vector-width

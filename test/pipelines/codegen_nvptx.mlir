// The Codegen phase for an nvptx #ds.target (ds-compile picks backend=nvptx from it): the same
// outlined linalg kernels, mapped to gpu.func (passes/codegen/nvptx) and lowered to NVVM inside
// gpu.module @ds_gpu; PTX is the Artifact phase's (test/pipelines/nvptx_ptx.test).
// RUN: ds-opt %s -split-input-file -verify-diagnostics --ds-pipeline-codegen="backend=nvptx" | FileCheck %s
// RUN: ds-opt %s -split-input-file -verify-diagnostics --ds-pipeline-codegen="backend=nvptx activation-type=bf16" | FileCheck %s --check-prefix=BF16

// sm_90a add_rms_norm: an NVVM kernel with the f32 all-reduce as warp shuffles and shared memory.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch add_rms_norm {{.*}} {code_symbol = "ds_add_rms_norm_0"}
// CHECK: module @ds_kernels attributes {ds.codegen, gpu.container_module}
// CHECK: gpu.module @ds_gpu [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK: llvm.mlir.global internal @__wg_ds_add_rms_norm_0_0() {addr_space = 3 : i32
// CHECK: llvm.func @__nv_sqrtf(f32) -> f32
// CHECK: llvm.func @ds_add_rms_norm_0(
// CHECK-SAME: gpu.kernel
// CHECK-SAME: nvvm.kernel, nvvm.maxntid = array<i32: 64, 1, 1>
// CHECK: nvvm.read.ptx.sreg.ctaid.x
// CHECK: nvvm.read.ptx.sreg.tid.x
// CHECK: nvvm.shfl.sync bfly
// CHECK: nvvm.barrier
// CHECK: llvm.call @__nv_sqrtf
// CHECK-NOT: linalg.generic
// CHECK-NOT: gpu.func
// BF16-LABEL: llvm.func @ds_add_rms_norm_0(
// BF16: llvm.load {{.*}} -> bf16
// BF16: llvm.fpext {{.*}} : bf16 to f32
// BF16: llvm.fptrunc {{.*}} : f32 to bf16
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = ["wgmma", "tma", "fp8", "cp.async"], vector_bits = 128>} {
  ds.weight @w : tensor<64xf32> {name = "w"}
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xf32>
    %b = dsk.alloc tokens : memref<?x64xf32>
    %s = dsk.alloc tokens : memref<?x64xf32>
    %n = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add_rms_norm ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%s, %n : memref<?x64xf32>, memref<?x64xf32>) weights [@w] params {eps = 1.0e-5 : f32}
    return %n : memref<?x64xf32>
  }
}

// -----

// sm_80 swiglu: libdevice's expf (linked by the serializer), one strided loop per thread.
// CHECK-LABEL: func.func @step
// CHECK: gpu.module @ds_gpu [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK: llvm.func @__nv_expf(f32) -> f32
// CHECK: llvm.func @ds_swiglu_0(
// CHECK: llvm.call @__nv_expf
module attributes {ds.target = #ds.target<name = "sm_80", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_80", features = ["mma.sync", "cp.async"], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %g = dsk.alloc tokens : memref<?x64xf32>
    %u = dsk.alloc tokens : memref<?x64xf32>
    %y = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch swiglu ins(%g, %u : memref<?x64xf32>, memref<?x64xf32>) outs(%y : memref<?x64xf32>) weights [] params {}
    return %y : memref<?x64xf32>
  }
}

// -----

// Negative: backend=nvptx on a host module is refused by the GPU mapping.
// expected-error @+1 {{ds-codegen-nvptx-map-to-gpu: #ds.target 'host' has no backend = nvptx; GPU kernels need an sm_* target}}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xf32>
    %s = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add ins(%a, %a : memref<?x64xf32>, memref<?x64xf32>) outs(%s : memref<?x64xf32>) weights [] params {}
    return %s : memref<?x64xf32>
  }
}

// Negative: the backend option is checked.
// RUN: not ds-opt %s --ds-pipeline-codegen="backend=amdgpu" 2>&1 | FileCheck %s --check-prefix=BADOPT
// BADOPT: ds-pipeline-codegen: backend must be host or nvptx, got 'amdgpu'
// RUN: not ds-opt %s --ds-pipeline-codegen="backend=nvptx activation-type=f16" 2>&1 | FileCheck %s --check-prefix=BADTYPE
// BADTYPE: ds-pipeline-codegen: activation-type must be f32 or bf16, got 'f16'

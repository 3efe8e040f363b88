// ds-codegen-nvptx-map-to-gpu: the outlined linalg kernels (run through the outline pass first) as
// gpu.func kernels: blockIdx.x = row, columns strided over threads, row sums through
// gpu.all_reduce, per-row temporaries in workgroup memory; max-threads; bf16 row buffers.
// RUN: ds-opt %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(ds-codegen-outline-kernels,builtin.module(ds-codegen-nvptx-map-to-gpu))' | FileCheck %s
// RUN: ds-opt %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(ds-codegen-outline-kernels,builtin.module(ds-codegen-nvptx-map-to-gpu{max-threads=32}))' | FileCheck %s --check-prefix=MAX32
// RUN: ds-opt %s -split-input-file -verify-diagnostics --pass-pipeline='builtin.module(ds-codegen-outline-kernels,builtin.module(ds-codegen-nvptx-map-to-gpu{activation-type=bf16}))' | FileCheck %s --check-prefix=BF16

// add_rms_norm: the f32 sum of squares is a per-thread partial + gpu.all_reduce; the [rows]
// temporaries (sum, inverse) become [1] workgroup memory; thread 0 computes the inverse.
// CHECK-LABEL: module @ds_kernels attributes {ds.codegen, gpu.container_module}
// CHECK: gpu.module @ds_gpu [#nvvm.target<O = 3, chip = "sm_90a", features = "+ptx80">]
// CHECK: gpu.func @ds_add_rms_norm_0(%[[A:.*]]: memref<?x64xf32>, %[[B:.*]]: memref<?x64xf32>, %[[S:.*]]: memref<?x64xf32>, %[[N:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<64xf32>) workgroup(%[[ACC:.*]] : memref<1xf32, #gpu.address_space<workgroup>>, %[[INV:.*]] : memref<1xf32, #gpu.address_space<workgroup>>) kernel
// CHECK-SAME: ds.block_size = 64 : i64, ds.kernel = "add_rms_norm"
// CHECK-SAME: known_block_size = array<i32: 64, 1, 1>
// CHECK: %[[ROW:.*]] = gpu.block_id x
// CHECK: %[[TID:.*]] = gpu.thread_id x
// CHECK: scf.for %[[I:.*]] = %[[TID]] to %c64{{.*}} step %c64
// CHECK: memref.load %[[A]][%[[ROW]], %[[I]]]
// CHECK: memref.store %{{.*}}, %[[S]][%[[ROW]], %[[I]]]
// CHECK: gpu.barrier
// CHECK: %[[PART:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %{{.*}}) -> (f32)
// CHECK: %[[SUM:.*]] = gpu.all_reduce add %[[PART]] uniform
// CHECK: scf.if
// CHECK: memref.store %{{.*}}, %[[ACC]][%c0]
// CHECK: gpu.barrier
// CHECK: math.sqrt
// CHECK: memref.store %{{.*}}, %[[INV]][%c0]
// CHECK: memref.load %[[INV]][%c0]
// CHECK: memref.store %{{.*}}, %[[N]][%[[ROW]], %{{.*}}]
// CHECK: gpu.return
// CHECK-NOT: func.func @ds_
// MAX32-LABEL: gpu.func @ds_add_rms_norm_0
// MAX32-SAME: known_block_size = array<i32: 32, 1, 1>
// bf16 activations: row buffers are bf16, loads extend, stores truncate, the sum stays f32 in
// workgroup memory; the weight stays f32.
// BF16: gpu.func @ds_add_rms_norm_0(%[[A:.*]]: memref<?x64xbf16>, %{{.*}}: memref<?x64xbf16>, %[[S:.*]]: memref<?x64xbf16>, %{{.*}}: memref<?x64xbf16>, %{{.*}}: memref<64xf32>) workgroup(%{{.*}} : memref<1xf32, #gpu.address_space<workgroup>>
// BF16-SAME: ds.activation_type = "bf16"
// BF16: %[[X:.*]] = memref.load %[[A]]
// BF16: arith.extf %[[X]] : bf16 to f32
// BF16: %[[T:.*]] = arith.truncf %{{.*}} : f32 to bf16
// BF16: memref.store %[[T]], %[[S]]
// BF16: gpu.all_reduce add %{{.*}} uniform
// BF16-NEXT: } : (f32) -> f32

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

// rms_norm over per-head rows (row_scale 4) for sm_80: the f64 sum of the library kernel stays f64.
// CHECK-LABEL: module @ds_kernels
// CHECK: gpu.module @ds_gpu [#nvvm.target<O = 3, chip = "sm_80", features = "+ptx70">]
// CHECK: gpu.func @ds_rms_norm_0({{.*}}) workgroup(%{{.*}} : memref<1xf64, #gpu.address_space<workgroup>>, %{{.*}} : memref<1xf32, #gpu.address_space<workgroup>>) kernel
// CHECK-SAME: ds.block_size = 32 : i64
// CHECK-SAME: ds.row_scale = 4 : i64
// CHECK: arith.extf %{{.*}} : f32 to f64
// CHECK: gpu.all_reduce add %{{.*}} uniform
// CHECK-NEXT: } : (f64) -> f64
// MAX32-LABEL: gpu.func @ds_rms_norm_0
module attributes {ds.target = #ds.target<name = "sm_80", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_80", features = ["mma.sync", "cp.async"], vector_bits = 128>} {
  ds.weight @qn : tensor<16xbf16> {name = "qn"}
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x4x16xf32> {
    %v = dsk.alloc tokens : memref<?x4x16xf32>
    %q = dsk.alloc tokens : memref<?x4x16xf32>
    dsk.launch rms_norm ins(%v : memref<?x4x16xf32>) outs(%q : memref<?x4x16xf32>) weights [@qn] params {eps = 1.0e-6 : f32}
    return %q : memref<?x4x16xf32>
  }
}

// -----

// swiglu and add: wide rows (1000) take the most threads (256), one strided loop each.
// CHECK-LABEL: module @ds_kernels
// CHECK: gpu.func @ds_swiglu_0
// CHECK-SAME: known_block_size = array<i32: 256, 1, 1>
// CHECK: scf.for %{{.*}} = %{{.*}} to %c1000 step %c256
// CHECK: math.exp
// CHECK: gpu.func @ds_add_1
// CHECK: arith.addf
// MAX32-LABEL: gpu.func @ds_swiglu_0
// MAX32-SAME: known_block_size = array<i32: 32, 1, 1>
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x1000xf32> {
    %g = dsk.alloc tokens : memref<?x1000xf32>
    %u = dsk.alloc tokens : memref<?x1000xf32>
    %y = dsk.alloc tokens : memref<?x1000xf32>
    %z = dsk.alloc tokens : memref<?x1000xf32>
    dsk.launch swiglu ins(%g, %u : memref<?x1000xf32>, memref<?x1000xf32>) outs(%y : memref<?x1000xf32>) weights [] params {}
    dsk.launch add ins(%y, %u : memref<?x1000xf32>, memref<?x1000xf32>) outs(%z : memref<?x1000xf32>) weights [] params {}
    return %z : memref<?x1000xf32>
  }
}

// -----

// rope, half-split and interleaved: inv_freq moves into the gpu.module, the cos/sin tables of a
// row live in workgroup memory, the [rows, heads, half] rotation is flattened over threads.
// CHECK-LABEL: module @ds_kernels
// CHECK: gpu.module @ds_gpu
// CHECK: memref.global "private" constant @ds_rope_0_inv_freq
// CHECK: memref.global "private" constant @ds_rope_1_inv_freq
// CHECK: gpu.func @ds_rope_0({{.*}}) workgroup(%[[COS:.*]] : memref<1x2xf32, #gpu.address_space<workgroup>>, %{{.*}} : memref<1x2xf32, #gpu.address_space<workgroup>>) kernel
// CHECK: memref.get_global @ds_rope_0_inv_freq
// CHECK: math.cos %{{.*}} : f64
// CHECK: memref.store %{{.*}}, %[[COS]][%c0, %{{.*}}]
// CHECK: gpu.barrier
// CHECK: scf.for %[[F:.*]] = %{{.*}} to %c4 step %c32
// CHECK: arith.remui %[[F]], %c2
// CHECK: arith.divui %[[F]], %c2
// CHECK: arith.subf
// CHECK: gpu.func @ds_rope_1
// CHECK: memref.subview %{{.*}}[0, 0, 1] [%{{.*}}, 2, 4] [1, 1, 2]
// CHECK-NOT: func.func
// MAX32-LABEL: gpu.func @ds_rope_0
// BF16-LABEL: gpu.func @ds_rope_0(%{{.*}}: memref<?x2x8xbf16>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x2x8xbf16>)
// BF16: memref.subview %{{.*}}[0, 0, 0] [%{{.*}}, 2, 2] [1, 1, 1] : memref<?x2x8xbf16> to memref<?x2x2xbf16, strided<[16, 8, 1]>>
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x2x8xf32> {
    %x = dsk.alloc tokens : memref<?x2x8xf32>
    %y = dsk.alloc tokens : memref<?x2x8xf32>
    %z = dsk.alloc tokens : memref<?x2x8xf32>
    dsk.launch rope ins(%x, %pos : memref<?x2x8xf32>, memref<?xi32>) outs(%y : memref<?x2x8xf32>) weights [] params {rope = #ds.rope<theta = 1000000.0, dim = 4>}
    dsk.launch rope ins(%y, %pos : memref<?x2x8xf32>, memref<?xi32>) outs(%z : memref<?x2x8xf32>) weights [] params {rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true>}
    return %z : memref<?x2x8xf32>
  }
}

// -----

// Negative: the host backend has no GPU kernels.
// expected-error @+1 {{ds-codegen-nvptx-map-to-gpu: #ds.target 'host' has no backend = nvptx; GPU kernels need an sm_* target}}
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xf32>
    %s = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add ins(%a, %a : memref<?x64xf32>, memref<?x64xf32>) outs(%s : memref<?x64xf32>) weights [] params {}
    return %s : memref<?x64xf32>
  }
}

// -----

// A plan without generated kernels gets no gpu.module.
// CHECK-LABEL: func.func @step
// CHECK-NOT: gpu.module
// MAX32-LABEL: func.func @step
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  ds.weight @e : tensor<16x8xf32> {name = "e"}
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x8xf32> {
    %h = dsk.alloc tokens : memref<?x8xf32>
    dsk.launch embed ins(%ids : memref<?xi32>) outs(%h : memref<?x8xf32>) weights [@e] params {}
    return %h : memref<?x8xf32>
  }
}

// -----

// A bf16 plan (ds-compile --target sm_90a): the outlined kernel carries ds.row_type = "bf16", which
// wins over the activation-type option (f32 here, the default): rows bf16, the weight f32.
// CHECK-LABEL: module @ds_kernels
// CHECK: gpu.func @ds_rms_norm_0(%{{.*}}: memref<?x64xbf16>, %{{.*}}: memref<?x64xbf16>, %{{.*}}: memref<64xf32>)
// CHECK-SAME: ds.activation_type = "bf16"
// CHECK: arith.extf %{{.*}} : bf16 to f32
// CHECK: arith.truncf %{{.*}} : f32 to bf16
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  ds.weight @w : tensor<64xf32> {name = "w"}
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xbf16> {
    %a = dsk.alloc tokens : memref<?x64xbf16>
    %n = dsk.alloc tokens : memref<?x64xbf16>
    dsk.launch rms_norm ins(%a : memref<?x64xbf16>) outs(%n : memref<?x64xbf16>) weights [@w] params {eps = 1.0e-5 : f32}
    return %n : memref<?x64xbf16>
  }
}

// Negative: max-threads is checked.
// RUN: not ds-opt %s --split-input-file --pass-pipeline='builtin.module(builtin.module(ds-codegen-nvptx-map-to-gpu{max-threads=48}))' 2>&1 | FileCheck %s --check-prefix=BADT
// BADT: error: max-threads must be a multiple of 32 in [32, 1024], got 48
// Negative: activation-type is checked.
// RUN: not ds-opt %s --split-input-file --pass-pipeline='builtin.module(builtin.module(ds-codegen-nvptx-map-to-gpu{activation-type=f16}))' 2>&1 | FileCheck %s --check-prefix=BADTYPE
// BADTYPE: error: activation-type must be f32 or bf16, got 'f16'

// -----

// Negative: a reduction other than a sum (here max, in a hand-written kernel module) is refused.
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) {
    return
  }
  module @hand_written_kernels {
    func.func @ds_max_0(%x: memref<?x64xf32>, %m: memref<?xf32>) attributes {ds.kernel = "max"} {
      // expected-error @+1 {{'linalg.generic' op only sum reductions (yield addf(acc, x)) are supported}}
      linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0)>], iterator_types = ["parallel", "reduction"]} ins(%x : memref<?x64xf32>) outs(%m : memref<?xf32>) {
      ^bb0(%a: f32, %acc: f32):
        %r = arith.maximumf %acc, %a : f32
        linalg.yield %r : f32
      }
      return
    }
  }
}

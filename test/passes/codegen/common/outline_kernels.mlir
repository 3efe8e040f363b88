// RUN: ds-opt %s -split-input-file -ds-codegen-outline-kernels -verify-diagnostics | FileCheck %s

// add_rms_norm: the sum, its f32 sum of squares (a reduction), 1/sqrt(mean + eps), the scaled row.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch add_rms_norm {{.*}} {code_symbol = "ds_add_rms_norm_0"}
// CHECK: module @ds_kernels attributes {ds.codegen}
// CHECK: func.func @ds_add_rms_norm_0(%[[A:.*]]: memref<?x64xf32>, %[[B:.*]]: memref<?x64xf32>, %[[S:.*]]: memref<?x64xf32>, %[[N:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<64xf32>)
// CHECK-SAME: ds.kernel = "add_rms_norm", ds.num_buffers = 4 : i64, ds.row_scale = 1 : i64
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]{{.*}} ins(%[[A]], %[[B]] : {{.*}}) outs(%[[S]] : {{.*}})
// CHECK: arith.addf
// CHECK: %[[ACC:.*]] = memref.alloc(%{{.*}}) : memref<?xf32>
// CHECK: linalg.fill {{.*}} outs(%[[ACC]] : memref<?xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}} ins(%[[S]] : memref<?x64xf32>) outs(%[[ACC]] : memref<?xf32>)
// CHECK: arith.mulf
// CHECK: arith.addf
// CHECK: %[[INV:.*]] = memref.alloc
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel"]{{.*}} ins(%[[ACC]] : memref<?xf32>) outs(%[[INV]] : memref<?xf32>)
// CHECK: math.sqrt
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]{{.*}} ins(%[[S]], %[[INV]], %[[W]] : {{.*}}) outs(%[[N]] : memref<?x64xf32>)
// CHECK: memref.dealloc %[[ACC]]
// CHECK: memref.dealloc %[[INV]]
// CHECK-NEXT: return
ds.weight @w : tensor<64xf32> {name = "w"}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
  %a = dsk.alloc tokens : memref<?x64xf32>
  %b = dsk.alloc tokens : memref<?x64xf32>
  %s = dsk.alloc tokens : memref<?x64xf32>
  %n = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch add_rms_norm ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%s, %n : memref<?x64xf32>, memref<?x64xf32>) weights [@w] params {eps = 1.0e-5 : f32}
  return %n : memref<?x64xf32>
}

// -----

// rms_norm over heads of a 3-D view: rows are T * 4 of width 16, summed in f64 like the library.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch rms_norm {{.*}} {code_symbol = "ds_rms_norm_0"}
// CHECK: func.func @ds_rms_norm_0(%{{.*}}: memref<?x16xf32>, %{{.*}}: memref<?x16xf32>, %{{.*}}: memref<16xf32>)
// CHECK-SAME: ds.row_scale = 4 : i64
// CHECK: memref.alloc(%{{.*}}) : memref<?xf64>
// CHECK: linalg.generic {{.*}}"reduction"
// CHECK: arith.extf {{.*}} : f32 to f64
// CHECK: arith.truncf {{.*}} : f64 to f32
ds.weight @qn : tensor<16xbf16> {name = "qn"}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x4x16xf32> {
  %a = dsk.alloc tokens : memref<?x64xf32>
  %v = dsk.view %a : memref<?x64xf32> -> memref<?x4x16xf32>
  %q = dsk.alloc tokens : memref<?x4x16xf32>
  dsk.launch rms_norm ins(%v : memref<?x4x16xf32>) outs(%q : memref<?x4x16xf32>) weights [@qn] params {eps = 1.0e-6 : f32}
  return %q : memref<?x4x16xf32>
}

// -----

// Identical launches share one kernel; swiglu is silu(g) * u with the library's exp.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch swiglu {{.*}} {code_symbol = "ds_swiglu_0"}
// CHECK: dsk.launch add {{.*}} {code_symbol = "ds_add_1"}
// CHECK: dsk.launch add {{.*}} {code_symbol = "ds_add_1"}
// CHECK: func.func @ds_swiglu_0
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: func.func @ds_add_1
// CHECK-NOT: func.func
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x172xf32> {
  %g = dsk.alloc tokens : memref<?x172xf32>
  %u = dsk.alloc tokens : memref<?x172xf32>
  %y = dsk.alloc tokens : memref<?x172xf32>
  dsk.launch swiglu ins(%g, %u : memref<?x172xf32>, memref<?x172xf32>) outs(%y : memref<?x172xf32>) weights [] params {}
  %z = dsk.alloc tokens : memref<?x172xf32>
  dsk.launch add ins(%y, %u : memref<?x172xf32>, memref<?x172xf32>) outs(%z : memref<?x172xf32>) weights [] params {}
  %o = dsk.alloc tokens : memref<?x172xf32>
  dsk.launch add ins(%z, %u : memref<?x172xf32>, memref<?x172xf32>) outs(%o : memref<?x172xf32>) weights [] params {}
  return %o : memref<?x172xf32>
}

// -----

// rope over the first 4 of 8 channels per head: the runtime's inv_freq as a constant global, cos/sin
// in f64 per (token, pair), the rotation over two half-channel views, the last 4 channels copied.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch rope {{.*}} {code_symbol = "ds_rope_0"}
// CHECK: memref.global "private" constant @ds_rope_0_inv_freq : memref<2xf32> = dense<[1.000000e+00, 1.000000e-03]>
// CHECK: func.func @ds_rope_0(%[[X:.*]]: memref<?x2x8xf32>, %[[P:.*]]: memref<?xi32>, %[[Y:.*]]: memref<?x2x8xf32>)
// CHECK: memref.get_global @ds_rope_0_inv_freq
// CHECK: linalg.generic {{.*}} ins(%[[P]], %{{.*}} : memref<?xi32>, memref<2xf32>)
// CHECK: arith.sitofp
// CHECK: math.cos {{.*}} : f64
// CHECK: math.sin {{.*}} : f64
// CHECK: memref.subview %[[Y]][0, 0, 0] [%{{.*}}, 2, 2]
// CHECK: memref.subview %[[Y]][0, 0, 2] [%{{.*}}, 2, 2]
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]
// CHECK: arith.subf
// CHECK: arith.addf
// CHECK: memref.subview %[[X]][0, 0, 4] [%{{.*}}, 2, 4]
// CHECK: linalg.generic
// CHECK: linalg.yield
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x2x8xf32> {
  %x = dsk.alloc tokens : memref<?x2x8xf32>
  %y = dsk.alloc tokens : memref<?x2x8xf32>
  dsk.launch rope ins(%x, %pos : memref<?x2x8xf32>, memref<?xi32>) outs(%y : memref<?x2x8xf32>) weights [] params {rope = #ds.rope<theta = 1000000.0, dim = 4>}
  return %y : memref<?x2x8xf32>
}

// -----

// Interleaved rope pairs (DeepSeek): the halves are stride-2 views (2i, 2i + 1). (A rope without
// parameters no longer exists: the dsk verifier rejects it, test/dialects/dsk/invalid_launch.mlir.)
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch rope {{.*}} {code_symbol = "ds_rope_0"}
// CHECK: func.func @ds_rope_0(%[[X:.*]]: memref<?x2x8xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x2x8xf32>)
// CHECK: memref.subview %[[X]][0, 0, 0] [%{{.*}}, 2, 4] [1, 1, 2]
// CHECK: memref.subview %[[X]][0, 0, 1] [%{{.*}}, 2, 4] [1, 1, 2]
// CHECK-NOT: func.func
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x2x8xf32> {
  %x = dsk.alloc tokens : memref<?x2x8xf32>
  %y = dsk.alloc tokens : memref<?x2x8xf32>
  dsk.launch rope ins(%x, %pos : memref<?x2x8xf32>, memref<?xi32>) outs(%y : memref<?x2x8xf32>) weights [] params {rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true>}
  return %y : memref<?x2x8xf32>
}

// -----

// Negative: GEMM-bearing and unsupported launches stay library calls; a norm whose weight is
// not as wide as the rows or not a vector, or non-f32 buffers, too. No kernel module.
// CHECK-LABEL: func.func @step
// CHECK-NOT: code_symbol
// CHECK-NOT: module @ds_kernels
ds.weight @lin : tensor<64x64xf32> {name = "lin"}
ds.weight @wide : tensor<32xf32> {name = "wide"}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
  %a = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch embed ins(%ids : memref<?xi32>) outs(%a : memref<?x64xf32>) weights [@lin] params {}
  %b = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch linear ins(%a : memref<?x64xf32>) outs(%b : memref<?x64xf32>) weights [@lin] params {}
  %c = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch rms_norm ins(%b : memref<?x64xf32>) outs(%c : memref<?x64xf32>) weights [@wide] params {eps = 1.0e-5 : f32}
  %h = dsk.alloc tokens : memref<?x64xf16>
  %k = dsk.alloc tokens : memref<?x64xf16>
  dsk.launch add ins(%h, %h : memref<?x64xf16>, memref<?x64xf16>) outs(%k : memref<?x64xf16>) weights [] params {}
  %e = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch rms_norm ins(%c : memref<?x64xf32>) outs(%e : memref<?x64xf32>) weights [@lin] params {eps = 1.0e-5 : f32}
  return %e : memref<?x64xf32>
}

// -----

// Negative: the pass needs the kernel plan.
// expected-error @+1 {{expected a func.func @step}}
module {
  func.func @forward() {
    return
  }
}

// -----

// An add_rms_norm carrying a tensor-parallel all-reduce of its rhs stays a library launch (the
// generated kernel has no communicator).
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch add_rms_norm {{.*}} params {all_reduce_rhs, eps = 9.99999974E-6 : f32}
// CHECK-NOT: code_symbol
// CHECK-NOT: func.func @ds_add_rms_norm
ds.weight @w : tensor<64xf32> {name = "w"}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
  %a = dsk.alloc tokens : memref<?x64xf32>
  %b = dsk.alloc tokens : memref<?x64xf32>
  %s = dsk.alloc tokens : memref<?x64xf32>
  %n = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch add_rms_norm ins(%a, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%s, %n : memref<?x64xf32>, memref<?x64xf32>) weights [@w] params {all_reduce_rhs, eps = 1.0e-5 : f32}
  return %n : memref<?x64xf32>
}

// -----

// GEMM launches keep the library GEMMs and get generated epilogues: the SwiGLU of gate/up, the
// in-place rope of q and k (sharing the kernels of equivalent standalone launches), interleaved
// or not.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch swiglu_linear {{.*}} {epilogue_symbols = ["[[SW:ds_swiglu_[0-9]+]]"]}
// CHECK: dsk.launch qkv_rope {{.*}} {epilogue_symbols = ["[[RQ:ds_rope_[0-9]+]]", "[[RK:ds_rope_[0-9]+]]"]}
// CHECK: dsk.launch qkv_rope {{.*}} {epilogue_symbols = ["ds_rope_{{[0-9]+}}", "ds_rope_{{[0-9]+}}"]}
// CHECK: func.func @[[SW]](%{{.*}}: memref<?x12xf32>, %{{.*}}: memref<?x12xf32>, %{{.*}}: memref<?x12xf32>)
// CHECK: func.func @[[RQ]](%{{.*}}: memref<?x2x4xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x2x4xf32>)
// CHECK: func.func @[[RK]](%{{.*}}: memref<?x1x4xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x1x4xf32>)
ds.weight @gu : tensor<24x8xf32> {name = "gu", concat = ["g", "u"]}
ds.weight @qkv : tensor<16x8xf32> {name = "qkv", concat = ["q", "k", "v"]}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x12xf32> {
  %x = dsk.alloc tokens : memref<?x8xf32>
  %y = dsk.alloc tokens : memref<?x12xf32>
  dsk.launch swiglu_linear ins(%x : memref<?x8xf32>) outs(%y : memref<?x12xf32>) weights [@gu, @gu] params {}
  %q = dsk.alloc tokens : memref<?x2x4xf32>
  %k = dsk.alloc tokens : memref<?x1x4xf32>
  %v = dsk.alloc tokens : memref<?x1x4xf32>
  dsk.launch qkv_rope ins(%x, %pos : memref<?x8xf32>, memref<?xi32>) outs(%q, %k, %v : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>) weights [@qkv, @qkv, @qkv] params {rope = #ds.rope<theta = 10000.0, dim = 4>}
  dsk.launch qkv_rope ins(%x, %pos : memref<?x8xf32>, memref<?xi32>) outs(%q, %k, %v : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>) weights [@qkv, @qkv, @qkv] params {rope = #ds.rope<theta = 10000.0, dim = 4, interleaved = true>}
  return %y : memref<?x12xf32>
}

// -----

// MLA prologue (DeepSeek): the rope of q_rope [T, H, Dr] and of the head-shared k_rope [T, Dr],
// viewed as [T, 1, Dr], run as generated epilogues after the library projections.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch mla_project {{.*}} {epilogue_symbols = ["[[Q:ds_rope_[0-9]+]]", "[[K:ds_rope_[0-9]+]]"]}
// CHECK-NOT: dsk.view
// CHECK: func.func @[[Q]](%{{.*}}: memref<?x4x8xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x4x8xf32>)
// CHECK: func.func @[[K]](%{{.*}}: memref<?x1x8xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x1x8xf32>)
ds.weight @q_b : tensor<64x16xf32> {name = "q_b"}
ds.weight @kv_a : tensor<24x16xf32> {name = "kv_a"}
ds.weight @kv_n : tensor<16xf32> {name = "kv_n"}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x8xf32> {
  %x = dsk.alloc tokens : memref<?x16xf32>
  %qn = dsk.alloc tokens : memref<?x4x8xf32>
  %qr = dsk.alloc tokens : memref<?x4x8xf32>
  %c = dsk.alloc tokens : memref<?x16xf32>
  %kr = dsk.alloc tokens : memref<?x8xf32>
  dsk.launch mla_project ins(%x, %pos : memref<?x16xf32>, memref<?xi32>) outs(%qn, %qr, %c, %kr : memref<?x4x8xf32>, memref<?x4x8xf32>, memref<?x16xf32>, memref<?x8xf32>) weights [unit, unit, @q_b, @kv_a, @kv_n] params {eps = 1.0e-6 : f32, rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true>}
  return %kr : memref<?x8xf32>
}

// -----

// bf16 row buffers of a GPU plan (ds-compile --target sm_90a, --dtype bf16 by default): the kernel
// keeps its f32 body and argument types, marked ds.row_type = "bf16" for the GPU mapping, which
// stores those rows as bf16 (test/passes/codegen/nvptx/map_kernels_to_gpu.mlir). Rope too.
// CHECK-LABEL: func.func @step
// CHECK: dsk.launch add_rms_norm {{.*}} {code_symbol = "ds_add_rms_norm_0"}
// CHECK: dsk.launch rope {{.*}} {code_symbol = "ds_rope_1"}
// CHECK: func.func @ds_add_rms_norm_0(%{{.*}}: memref<?x64xf32>, %{{.*}}: memref<?x64xf32>, %{{.*}}: memref<?x64xf32>, %{{.*}}: memref<?x64xf32>, %{{.*}}: memref<64xf32>)
// CHECK-SAME: ds.row_type = "bf16"
// CHECK: func.func @ds_rope_1(%{{.*}}: memref<?x2x8xf32>, %{{.*}}: memref<?xi32>, %{{.*}}: memref<?x2x8xf32>)
// CHECK-SAME: ds.row_type = "bf16"
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  ds.weight @w : tensor<64xf32> {name = "w"}
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x2x8xbf16> {
    %a = dsk.alloc tokens : memref<?x64xbf16>
    %b = dsk.alloc tokens : memref<?x64xbf16>
    %s = dsk.alloc tokens : memref<?x64xbf16>
    %n = dsk.alloc tokens : memref<?x64xbf16>
    dsk.launch add_rms_norm ins(%a, %b : memref<?x64xbf16>, memref<?x64xbf16>) outs(%s, %n : memref<?x64xbf16>, memref<?x64xbf16>) weights [@w] params {eps = 1.0e-5 : f32}
    %x = dsk.alloc tokens : memref<?x2x8xbf16>
    %y = dsk.alloc tokens : memref<?x2x8xbf16>
    dsk.launch rope ins(%x, %pos : memref<?x2x8xbf16>, memref<?xi32>) outs(%y : memref<?x2x8xbf16>) weights [] params {rope = #ds.rope<theta = 10000.0, dim = 8>}
    return %y : memref<?x2x8xbf16>
  }
}

// -----

// Negative: bf16 rows on the host target (the CPU computes f32 activations) and a launch mixing
// bf16 and f32 rows on a GPU target stay library calls.
// CHECK-LABEL: func.func @step
// CHECK-NOT: code_symbol
// CHECK-NOT: module @ds_kernels
module attributes {ds.target = #ds.target<name = "host", backend = host, triple = "x86_64-unknown-linux-gnu", cpu = "x86-64", features = [], vector_bits = 256>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xbf16> {
    %a = dsk.alloc tokens : memref<?x64xbf16>
    %k = dsk.alloc tokens : memref<?x64xbf16>
    dsk.launch add ins(%a, %a : memref<?x64xbf16>, memref<?x64xbf16>) outs(%k : memref<?x64xbf16>) weights [] params {}
    return %k : memref<?x64xbf16>
  }
}

// -----

// CHECK-LABEL: func.func @step
// CHECK-NOT: code_symbol
// CHECK-NOT: module @ds_kernels
module attributes {ds.target = #ds.target<name = "sm_90a", backend = nvptx, triple = "nvptx64-nvidia-cuda", cpu = "sm_90a", features = [], vector_bits = 128>} {
  func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
    %a = dsk.alloc tokens : memref<?x64xbf16>
    %b = dsk.alloc tokens : memref<?x64xf32>
    %k = dsk.alloc tokens : memref<?x64xf32>
    dsk.launch add ins(%a, %b : memref<?x64xbf16>, memref<?x64xf32>) outs(%k : memref<?x64xf32>) weights [] params {}
    return %k : memref<?x64xf32>
  }
}

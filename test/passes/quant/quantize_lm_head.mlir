// RUN: ds-opt %s -ds-quant-weights="scheme=int4_g128 lm-head=int8" | FileCheck %s
// RUN: ds-opt %s -ds-quant-weights="scheme=none embed=int8" | FileCheck %s --check-prefix=EMB
// RUN: ds-opt %s -ds-quant-weights="scheme=int8 lm-head=int4_g64" | FileCheck %s --check-prefix=HEAD4
// RUN: ds-opt %s -ds-quant-weights="scheme=int4_g128 lm-head=int6_g64 embed=int6_g128" | FileCheck %s --check-prefix=HEAD6
// RUN: not ds-opt %s -ds-quant-weights="scheme=int8 lm-head=int6_g32" 2>&1 | FileCheck %s --check-prefix=BAD6
// RUN: not ds-opt %s -ds-quant-weights="scheme=int8 lm-head=int4_g128_asym" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not ds-opt %inputs/tied_head.mlir -ds-quant-weights="scheme=none lm-head=int4_g64 embed=int8" 2>&1 | FileCheck %s --check-prefix=TIED
// RUN: ds-opt %inputs/tied_head.mlir -ds-quant-weights="scheme=none lm-head=int4_g64 embed=int4_g64" | FileCheck %s --check-prefix=TIEDOK

// lm-head=int8 marks the ds.logits weight int8 (the GEMMs keep their scheme); embed=int8 the
// ds.embed table; scheme=none leaves the GEMMs.
// CHECK-DAG: ds.weight @e : tensor<16x8xf32> {name = "e"}
// CHECK-DAG: ds.weight @head : tensor<16x8xbf16> {name = "head", quant = "int8"}
// CHECK-DAG: ds.weight @wq : tensor<8x8xbf16> {name = "wq", quant = "int4_g128"}
// EMB-DAG: ds.weight @e : tensor<16x8xf32> {name = "e", quant = "int8"}
// EMB-DAG: ds.weight @head : tensor<16x8xbf16> {name = "head"}
// EMB-DAG: ds.weight @wq : tensor<8x8xbf16> {name = "wq"}
// HEAD4-DAG: ds.weight @head : tensor<16x8xbf16> {name = "head", quant = "int4_g64"}
// HEAD4-DAG: ds.weight @wq : tensor<8x8xbf16> {name = "wq", quant = "int8"}
// HEAD4-DAG: ds.weight @e : tensor<16x8xf32> {name = "e"}
// TIED: error: weight @t is both the output projection and the embedding table (tied): lm-head int4_g64 and embed int8 disagree; give one scheme
// TIEDOK: ds.weight @t : tensor<16x8xf32> {name = "t", quant = "int4_g64"}
// HEAD6-DAG: ds.weight @head : tensor<16x8xbf16> {name = "head", quant = "int6_g64"}
// HEAD6-DAG: ds.weight @e : tensor<16x8xf32> {name = "e", quant = "int6_g128"}
// HEAD6-DAG: ds.weight @wq : tensor<8x8xbf16> {name = "wq", quant = "int4_g128"}
// BAD: lm-head / embed quantization must be none, int8, int6_g64, int6_g128, int4_g64 or int4_g128, got 'int4_g128_asym'
// BAD6: lm-head / embed quantization must be none, int8, int6_g64, int6_g128, int4_g64 or int4_g128, got 'int6_g32'
ds.weight @e : tensor<16x8xf32> {name = "e"}
ds.weight @head : tensor<16x8xbf16> {name = "head"}
ds.weight @wq : tensor<8x8xbf16> {name = "wq"}
func.func @forward(%ids: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @e(%ids) : tensor<?xi32> -> tensor<?x8xf32>
  %q = ds.linear @wq(%h) : tensor<?x8xf32> -> tensor<?x8xf32>
  %l = ds.logits @head(%q) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

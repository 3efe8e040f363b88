// RUN: ds-opt %s -split-input-file -ds-quant-weights=scheme=int4_g128 | FileCheck %s
// RUN: ds-opt %s -split-input-file -ds-quant-weights=scheme=int8 | FileCheck %s --check-prefix=W8
// RUN: not ds-opt %s -split-input-file -ds-quant-weights=scheme=int3 2>&1 | FileCheck %s --check-prefix=BAD

// GEMM weights are marked; the embedding/lm_head, norms, router and native FP8 are not.
// CHECK-DAG: ds.weight @e : tensor<16x8xf32> {name = "e"}
// CHECK-DAG: ds.weight @n : tensor<8xf32> {name = "n"}
// CHECK-DAG: ds.weight @wq : tensor<8x8xbf16> {name = "wq", quant = "int4_g128"}
// CHECK-DAG: ds.weight @g : tensor<4x8xf32> {name = "g"}
// CHECK-DAG: ds.weight @eg : tensor<4x6x8xf32> {experts = 4 : i64, name = "x.{e}.g", quant = "int4_g128"}
// CHECK-DAG: ds.weight @f8 : tensor<8x8xf8E4M3FN> {block = array<i64: 128, 128>, name = "f8", scale = @f8s}
// W8-DAG: ds.weight @wq : tensor<8x8xbf16> {name = "wq", quant = "int8"}
// BAD: error: 'ds.weight' op unknown quantization 'int3'
ds.weight @e : tensor<16x8xf32> {name = "e"}
ds.weight @n : tensor<8xf32> {name = "n"}
ds.weight @wq : tensor<8x8xbf16> {name = "wq"}
ds.weight @g : tensor<4x8xf32> {name = "g"}
ds.weight @eg : tensor<4x6x8xf32> {name = "x.{e}.g", experts = 4}
ds.weight @eu : tensor<4x6x8xf32> {name = "x.{e}.u", experts = 4}
ds.weight @ed : tensor<4x8x6xf32> {name = "x.{e}.d", experts = 4}
ds.weight @f8 : tensor<8x8xf8E4M3FN> {name = "f8", scale = @f8s, block = array<i64: 128, 128>}
ds.weight @f8s : tensor<1x1xf32> {name = "f8_scale_inv"}
func.func @forward(%ids: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @e(%ids) : tensor<?xi32> -> tensor<?x8xf32>
  %n = ds.rms_norm @n(%h) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  %q = ds.linear @wq(%n) : tensor<?x8xf32> -> tensor<?x8xf32>
  %f = ds.linear @f8(%q) : tensor<?x8xf32> -> tensor<?x8xf32>
  %w, %i = ds.moe_gate @g(%f) {top_k = 2 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method greedy>, norm_topk_prob = false} : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  %m = ds.moe_experts(%f, %w, %i) {gate = @eg, up = @eu, down = @ed} : tensor<?x8xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x8xf32>
  %l = ds.logits @e(%m) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

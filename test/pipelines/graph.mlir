// The Graph phase (ds-compile --compile-to=graph) as one pipeline: sharding (tp > 1), the
// fusions, merged projection weights, unused weights dropped, quantization.
// RUN: ds-opt %s --ds-pipeline-graph | FileCheck %s
// RUN: ds-opt %s --ds-pipeline-graph="fuse=false" | FileCheck %s --check-prefix=NOFUSE
// RUN: ds-opt %s --ds-pipeline-graph="fuse=true quant=w8 tp=2" | FileCheck %s --check-prefix=TP2
// RUN: ds-opt %s --ds-pipeline-graph="quant=w4g128a" | FileCheck %s --check-prefix=W4

// Defaults (fuse=true quant=none tp=1): q/k/v and gate/up stacked into one GEMM weight each,
// their separate declarations dropped, residual adds folded into the norms.
// CHECK-LABEL: module {
// CHECK: ds.weight @wq.merged_qkv : tensor<128x64xf32> {concat = [
// CHECK-NOT: ds.weight @wk
// CHECK: ds.weight @w_gate.merged_gate_up : tensor<344x64xf32>
// CHECK-NOT: ds.weight @w_up
// CHECK: ds.qkv_rope @wq.merged_qkv, @wq.merged_qkv, @wq.merged_qkv
// CHECK: ds.add_rms_norm @mlp_norm
// CHECK: ds.swiglu_linear @w_gate.merged_gate_up, @w_gate.merged_gate_up
// CHECK-NOT: quant =

// NOFUSE-NOT: ds.qkv_rope
// NOFUSE-NOT: ds.add_rms_norm
// NOFUSE: ds.weight @wk : tensor<32x64xf32>
// NOFUSE: ds.swiglu %

// Two ranks: sharded weights (not merged: they are cut), int8 marks on the GEMM weights only,
// the all_reduce folded into the following add_rms_norm.
// TP2-LABEL: module attributes {ds.tp = 2 : i64}
// TP2: ds.weight @embed : tensor<256x64xf32> {{{.*}}shard = array<i64: 0, 2>}
// TP2: ds.weight @attn_norm : tensor<64xf32> {file = "model.safetensors", name = "model.layers.0.input_layernorm.weight"}
// TP2: ds.weight @wq : tensor<32x64xf32> {{{.*}}quant = "int8", shard = array<i64: 0, 2>}
// TP2: ds.weight @wo : tensor<64x32xf32> {{{.*}}quant = "int8", shard = array<i64: 1, 2>}
// TP2: ds.qkv_rope @wq, @wk, @wv
// TP2: ds.add_rms_norm @mlp_norm({{.*}}) {all_reduce_rhs,
// TP2: ds.all_gather

// W4: ds.weight @wq.merged_qkv : tensor<128x64xf32> {{{.*}}quant = "int4_g128_asym"}
// W4: ds.weight @wo : tensor<64x64xf32> {{{.*}}quant = "int4_g128_asym"}
// W4: ds.weight @norm : tensor<64xf32> {file = "model.safetensors", name = "model.norm.weight"}

// Negative: option values are checked and named.
// RUN: not ds-opt %s --ds-pipeline-graph="quant=w3" 2>&1 | FileCheck %s --check-prefix=BADQ
// BADQ: error: ds-pipeline-graph: unsupported quant 'w3' (none, w8, w4g64, w4g128, w4g64a, w4g128a, fp8)
// RUN: not ds-opt %s --ds-pipeline-graph="tp=0" 2>&1 | FileCheck %s --check-prefix=BADTP
// BADTP: error: ds-pipeline-graph: tp must be in [1, 64], got 0
// RUN: not ds-opt %s --ds-pipeline-graph="fuse=often" 2>&1 | FileCheck %s --check-prefix=BADFUSE
// BADFUSE: for the --fuse option: 'often' is invalid value for boolean argument
// RUN: not ds-opt %s --ds-pipeline-graph="plan-memory=false" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: no such option plan-memory

// One Llama decoder layer with embedding and tied logits.
ds.weight @embed : tensor<512x64xf32> {name = "model.embed_tokens.weight", file = "model.safetensors"}
ds.weight @attn_norm : tensor<64xf32> {name = "model.layers.0.input_layernorm.weight", file = "model.safetensors"}
ds.weight @wq : tensor<64x64xf32> {name = "model.layers.0.self_attn.q_proj.weight", file = "model.safetensors"}
ds.weight @wk : tensor<32x64xf32> {name = "model.layers.0.self_attn.k_proj.weight", file = "model.safetensors"}
ds.weight @wv : tensor<32x64xf32> {name = "model.layers.0.self_attn.v_proj.weight", file = "model.safetensors"}
ds.weight @wo : tensor<64x64xf32> {name = "model.layers.0.self_attn.o_proj.weight", file = "model.safetensors"}
ds.weight @mlp_norm : tensor<64xf32> {name = "model.layers.0.post_attention_layernorm.weight", file = "model.safetensors"}
ds.weight @w_gate : tensor<172x64xf32> {name = "model.layers.0.mlp.gate_proj.weight", file = "model.safetensors"}
ds.weight @w_up : tensor<172x64xf32> {name = "model.layers.0.mlp.up_proj.weight", file = "model.safetensors"}
ds.weight @w_down : tensor<64x172xf32> {name = "model.layers.0.mlp.down_proj.weight", file = "model.safetensors"}
ds.weight @norm : tensor<64xf32> {name = "model.norm.weight", file = "model.safetensors"}

func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %cache: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x512xf32> {
  %h = ds.embed @embed(%ids) : tensor<?xi32> -> tensor<?x64xf32>
  %n = ds.rms_norm @attn_norm(%h) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
  %q = ds.linear @wq(%n) : tensor<?x64xf32> -> tensor<?x64xf32>
  %k = ds.linear @wk(%n) : tensor<?x64xf32> -> tensor<?x32xf32>
  %v = ds.linear @wv(%n) : tensor<?x64xf32> -> tensor<?x32xf32>
  %q3 = ds.view %q : tensor<?x64xf32> -> tensor<?x8x8xf32>
  %k3 = ds.view %k : tensor<?x32xf32> -> tensor<?x4x8xf32>
  %v3 = ds.view %v : tensor<?x32xf32> -> tensor<?x4x8xf32>
  %qr = ds.rope %q3, %pos {rope = #ds.rope<theta = 10000.0, dim = 8>} : tensor<?x8x8xf32>, tensor<?xi32>
  %kr = ds.rope %k3, %pos {rope = #ds.rope<theta = 10000.0, dim = 8>} : tensor<?x4x8xf32>, tensor<?xi32>
  %a = ds.attention %qr, %kr, %v3, %pos, %cache {layer = 0 : i64, scale = 0.353553385 : f32} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  %a2 = ds.view %a : tensor<?x8x8xf32> -> tensor<?x64xf32>
  %o = ds.linear @wo(%a2) : tensor<?x64xf32> -> tensor<?x64xf32>
  %h1 = ds.add %h, %o : tensor<?x64xf32>
  %n2 = ds.rms_norm @mlp_norm(%h1) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
  %g = ds.linear @w_gate(%n2) : tensor<?x64xf32> -> tensor<?x172xf32>
  %u = ds.linear @w_up(%n2) : tensor<?x64xf32> -> tensor<?x172xf32>
  %s = ds.swiglu %g, %u : tensor<?x172xf32>
  %d = ds.linear @w_down(%s) : tensor<?x172xf32> -> tensor<?x64xf32>
  %h2 = ds.add %h1, %d : tensor<?x64xf32>
  %f = ds.rms_norm @norm(%h2) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
  %l = ds.logits @embed(%f, rows %rows : tensor<?xi32>) : tensor<?x64xf32> -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

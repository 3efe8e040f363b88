// RUN: ds-opt %s | FileCheck %s
// RUN: ds-opt %s | ds-opt | FileCheck %s
// RUN: ds-opt %s --mlir-print-op-generic | ds-opt | FileCheck %s
// RUN: ds-opt %s --emit-bytecode | ds-opt | FileCheck %s

// One module using every ds op: a DeepSeek-V3 MoE layer (MLA with q LoRA, FP8 block-scaled
// weights, sigmoid group-limited router with correction bias, routed + shared experts) and a
// dense GQA layer with embedding and logits.

// CHECK: ds.weight @q_a : tensor<48x64xf8E4M3FN> {block = array<i64: 128, 128>, name = "model.layers.1.self_attn.q_a_proj.weight", scale = @q_a_scale}
ds.weight @q_a : tensor<48x64xf8E4M3FN> {name = "model.layers.1.self_attn.q_a_proj.weight", scale = @q_a_scale, block = array<i64: 128, 128>}
ds.weight @q_a_scale : tensor<1x1xf32> {name = "model.layers.1.self_attn.q_a_proj.weight_scale_inv"}
ds.weight @q_a_norm : tensor<48xbf16> {name = "model.layers.1.self_attn.q_a_layernorm.weight"}
ds.weight @q_b : tensor<96x48xbf16> {name = "model.layers.1.self_attn.q_b_proj.weight"}
ds.weight @kv_a : tensor<40x64xbf16> {name = "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"}
ds.weight @kv_a_norm : tensor<32xbf16> {name = "model.layers.1.self_attn.kv_a_layernorm.weight"}
ds.weight @kv_b : tensor<112x32xbf16> {name = "model.layers.1.self_attn.kv_b_proj.weight"}
ds.weight @o : tensor<64x48xbf16> {name = "model.layers.1.self_attn.o_proj.weight"}
ds.weight @gate : tensor<16x64xf32> {name = "model.layers.1.mlp.gate.weight"}
ds.weight @bias : tensor<16xf32> {name = "model.layers.1.mlp.gate.e_score_correction_bias"}
// CHECK: ds.weight @experts_gate : tensor<16x32x64xbf16> {experts = 16 : i64, name = "model.layers.1.mlp.experts.{e}.gate_proj.weight"}
ds.weight @experts_gate : tensor<16x32x64xbf16> {name = "model.layers.1.mlp.experts.{e}.gate_proj.weight", experts = 16}
ds.weight @experts_up : tensor<16x32x64xbf16> {name = "model.layers.1.mlp.experts.{e}.up_proj.weight", experts = 16}
ds.weight @experts_down : tensor<16x64x32xbf16> {name = "model.layers.1.mlp.experts.{e}.down_proj.weight", experts = 16}
ds.weight @shared_gate : tensor<32x64xbf16> {name = "model.layers.1.mlp.shared_experts.gate_proj.weight"}
ds.weight @shared_up : tensor<32x64xbf16> {name = "model.layers.1.mlp.shared_experts.up_proj.weight"}
ds.weight @shared_down : tensor<64x32xbf16> {name = "model.layers.1.mlp.shared_experts.down_proj.weight"}

// CHECK-LABEL: func.func @moe_layer
func.func @moe_layer(%x: tensor<?x64xbf16>, %pos: tensor<?xi32>, %cache: !ds.kv_cache) -> tensor<?x64xbf16> {
  %qa = ds.linear @q_a(%x) : tensor<?x64xbf16> -> tensor<?x48xbf16>
  %qn = ds.rms_norm @q_a_norm(%qa) {eps = 1.0e-6 : f32} : tensor<?x48xbf16>
  %q = ds.linear @q_b(%qn) : tensor<?x48xbf16> -> tensor<?x96xbf16>
  %q3 = ds.view %q : tensor<?x96xbf16> -> tensor<?x4x24xbf16>
  // CHECK: ds.slice %{{.*}}[0, 16]
  %q_nope = ds.slice %q3 [0, 16] : tensor<?x4x24xbf16> -> tensor<?x4x16xbf16>
  %q_pe = ds.slice %q3 [16, 8] : tensor<?x4x24xbf16> -> tensor<?x4x8xbf16>
  // CHECK: #ds.rope<theta = 1.000000e+04, dim = 8, interleaved = true, scaling = yarn, factor = 4.000000e+01, original_max_position = 4096, mscale = 1.000000e+00, mscale_all_dim = 1.000000e+00>
  %q_rot = ds.rope %q_pe, %pos {rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true, scaling = yarn, factor = 40.0, original_max_position = 4096, mscale = 1.0, mscale_all_dim = 1.0>} : tensor<?x4x8xbf16>, tensor<?xi32>
  %kva = ds.linear @kv_a(%x) : tensor<?x64xbf16> -> tensor<?x40xbf16>
  %ckv = ds.slice %kva [0, 32] : tensor<?x40xbf16> -> tensor<?x32xbf16>
  %kpe = ds.slice %kva [32, 8] : tensor<?x40xbf16> -> tensor<?x8xbf16>
  %ckvn = ds.rms_norm @kv_a_norm(%ckv) {eps = 1.0e-6 : f32} : tensor<?x32xbf16>
  %kpe3 = ds.view %kpe : tensor<?x8xbf16> -> tensor<?x1x8xbf16>
  %krot3 = ds.rope %kpe3, %pos {rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true, scaling = yarn, factor = 40.0, original_max_position = 4096, mscale = 1.0, mscale_all_dim = 1.0>} : tensor<?x1x8xbf16>, tensor<?xi32>
  %krot = ds.view %krot3 : tensor<?x1x8xbf16> -> tensor<?x8xbf16>
  // CHECK: ds.mla_attention @kv_b(
  %att = ds.mla_attention @kv_b(%q_nope, %q_rot, %ckvn, %krot, %pos, %cache) {layer = 1 : i64, scale = 0.2 : f32} : tensor<?x4x16xbf16>, tensor<?x4x8xbf16>, tensor<?x32xbf16>, tensor<?x8xbf16>, tensor<?xi32> -> tensor<?x4x12xbf16>
  %att2 = ds.view %att : tensor<?x4x12xbf16> -> tensor<?x48xbf16>
  %o = ds.linear @o(%att2) : tensor<?x48xbf16> -> tensor<?x64xbf16>
  %h = ds.add %x, %o : tensor<?x64xbf16>
  // CHECK: ds.moe_gate @gate({{.*}}) {correction_bias = @bias, n_group = 4 : i64, norm_topk_prob = true, routed_scaling_factor = 2.500000e+00 : f32, scoring = #ds<moe_scoring sigmoid>, top_k = 4 : i64, topk_group = 2 : i64, topk_method = #ds<moe_topk_method noaux_tc>}
  %w, %ids = ds.moe_gate @gate(%h) {top_k = 4 : i64, scoring = #ds<moe_scoring sigmoid>, topk_method = #ds<moe_topk_method noaux_tc>, n_group = 4 : i64, topk_group = 2 : i64, norm_topk_prob = true, routed_scaling_factor = 2.5 : f32, correction_bias = @bias} : tensor<?x64xbf16> -> tensor<?x4xf32>, tensor<?x4xi32>
  // CHECK: ds.moe_experts({{.*}}) {down = @experts_down, gate = @experts_gate, shared_down = @shared_down, shared_gate = @shared_gate, shared_up = @shared_up, up = @experts_up}
  %m = ds.moe_experts(%h, %w, %ids) {gate = @experts_gate, up = @experts_up, down = @experts_down, shared_gate = @shared_gate, shared_up = @shared_up, shared_down = @shared_down} : tensor<?x64xbf16>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x64xbf16>
  %out = ds.add %h, %m : tensor<?x64xbf16>
  return %out : tensor<?x64xbf16>
}

ds.weight @embed : tensor<512x64xbf16> {name = "model.embed_tokens.weight"}
ds.weight @wq : tensor<64x64xbf16> {name = "model.layers.0.self_attn.q_proj.weight"}
ds.weight @wkv : tensor<32x64xbf16> {name = "model.layers.0.self_attn.k_proj.weight"}
ds.weight @up : tensor<128x64xbf16> {name = "model.layers.0.mlp.up_proj.weight"}

// CHECK-LABEL: func.func @dense_layer
func.func @dense_layer(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %cache: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x512xf32> {
  // CHECK: ds.embed @embed
  %h = ds.embed @embed(%ids) : tensor<?xi32> -> tensor<?x64xbf16>
  %q = ds.linear @wq(%h) : tensor<?x64xbf16> -> tensor<?x64xbf16>
  %k = ds.linear @wkv(%h) : tensor<?x64xbf16> -> tensor<?x32xbf16>
  %q3 = ds.view %q : tensor<?x64xbf16> -> tensor<?x4x16xbf16>
  %k3 = ds.view %k : tensor<?x32xbf16> -> tensor<?x2x16xbf16>
  // CHECK: ds.attention {{.*}} {layer = 0 : i64, scale = 2.500000e-01 : f32, sliding_window = 4096 : i64}
  %a = ds.attention %q3, %k3, %k3, %pos, %cache {layer = 0 : i64, scale = 0.25 : f32, sliding_window = 4096 : i64} : tensor<?x4x16xbf16>, tensor<?x2x16xbf16>, tensor<?x2x16xbf16>, tensor<?xi32> -> tensor<?x4x16xbf16>
  %a2 = ds.view %a : tensor<?x4x16xbf16> -> tensor<?x64xbf16>
  %u = ds.linear @up(%a2) : tensor<?x64xbf16> -> tensor<?x128xbf16>
  // CHECK: ds.swiglu
  %s = ds.swiglu %u, %u : tensor<?x128xbf16>
  %g = ds.slice %s [0, 64] : tensor<?x128xbf16> -> tensor<?x64xbf16>
  %r = ds.add %h, %g : tensor<?x64xbf16>
  // CHECK: ds.logits @embed({{.*}}, rows
  %l = ds.logits @embed(%r, rows %rows : tensor<?xi32>) : tensor<?x64xbf16> -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

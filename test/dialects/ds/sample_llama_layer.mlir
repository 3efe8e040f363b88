// RUN: ds-opt %s | FileCheck %s
// RUN: ds-opt %s | ds-opt | FileCheck %s

// One Llama decoder layer plus embedding and logits: the demo module.

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

// CHECK-LABEL: func.func @forward
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %cache: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x512xf32> {
  // CHECK: ds.embed @embed
  %h = ds.embed @embed(%ids) : tensor<?xi32> -> tensor<?x64xf32>
  %n = ds.rms_norm @attn_norm(%h) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
  %q = ds.linear @wq(%n) : tensor<?x64xf32> -> tensor<?x64xf32>
  %k = ds.linear @wk(%n) : tensor<?x64xf32> -> tensor<?x32xf32>
  %v = ds.linear @wv(%n) : tensor<?x64xf32> -> tensor<?x32xf32>
  %q3 = ds.view %q : tensor<?x64xf32> -> tensor<?x8x8xf32>
  %k3 = ds.view %k : tensor<?x32xf32> -> tensor<?x4x8xf32>
  %v3 = ds.view %v : tensor<?x32xf32> -> tensor<?x4x8xf32>
  // CHECK: ds.rope {{.*}}#ds.rope<theta = 1.000000e+04, dim = 8>
  %qr = ds.rope %q3, %pos {rope = #ds.rope<theta = 10000.0, dim = 8>} : tensor<?x8x8xf32>, tensor<?xi32>
  %kr = ds.rope %k3, %pos {rope = #ds.rope<theta = 10000.0, dim = 8>} : tensor<?x4x8xf32>, tensor<?xi32>
  // CHECK: ds.attention {{.*}} {layer = 0 : i64, scale = {{.*}} : f32}
  %a = ds.attention %qr, %kr, %v3, %pos, %cache {layer = 0 : i64, scale = 0.353553385 : f32} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  %a2 = ds.view %a : tensor<?x8x8xf32> -> tensor<?x64xf32>
  %o = ds.linear @wo(%a2) : tensor<?x64xf32> -> tensor<?x64xf32>
  %h1 = ds.add %h, %o : tensor<?x64xf32>
  %n2 = ds.rms_norm @mlp_norm(%h1) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
  %g = ds.linear @w_gate(%n2) : tensor<?x64xf32> -> tensor<?x172xf32>
  %u = ds.linear @w_up(%n2) : tensor<?x64xf32> -> tensor<?x172xf32>
  // CHECK: ds.swiglu
  %s = ds.swiglu %g, %u : tensor<?x172xf32>
  %d = ds.linear @w_down(%s) : tensor<?x172xf32> -> tensor<?x64xf32>
  %h2 = ds.add %h1, %d : tensor<?x64xf32>
  %f = ds.rms_norm @norm(%h2) {eps = 1.0e-5 : f32} : tensor<?x64xf32>
  // CHECK: ds.logits @embed({{.*}}, rows %{{.*}} : tensor<?xi32>)
  %l = ds.logits @embed(%f, rows %rows : tensor<?xi32>) : tensor<?x64xf32> -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

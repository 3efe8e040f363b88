// RUN: ds-opt %s -split-input-file -verify-diagnostics

ds.weight @kv_b : tensor<112x32xbf16> {name = "kv_b"}
func.func @f(%qn: tensor<?x4x16xbf16>, %qr: tensor<?x4x8xbf16>, %c: tensor<?x32xbf16>, %kr: tensor<?x8xbf16>, %p: tensor<?xi32>, %cache: !ds.kv_cache) {
  // kv_b is [H * (nope + v), kv_lora_rank]; v = 16 needs 128 rows.
  // expected-error @+1 {{kv_b @kv_b has shape [112, 32], expected [128, 32]}}
  %0 = ds.mla_attention @kv_b(%qn, %qr, %c, %kr, %p, %cache) {layer = 0 : i64, scale = 0.2 : f32} : tensor<?x4x16xbf16>, tensor<?x4x8xbf16>, tensor<?x32xbf16>, tensor<?x8xbf16>, tensor<?xi32> -> tensor<?x4x16xbf16>
  return
}

// -----

ds.weight @kv_b : tensor<112x32xbf16> {name = "kv_b"}
func.func @f(%qn: tensor<?x4x16xbf16>, %qr: tensor<?x4x8xbf16>, %c: tensor<?x32xbf16>, %kr: tensor<?x4xbf16>, %p: tensor<?xi32>, %cache: !ds.kv_cache) {
  // expected-error @+1 {{q_rope dim 8 != k_rope dim 4}}
  %0 = ds.mla_attention @kv_b(%qn, %qr, %c, %kr, %p, %cache) {layer = 0 : i64, scale = 0.2 : f32} : tensor<?x4x16xbf16>, tensor<?x4x8xbf16>, tensor<?x32xbf16>, tensor<?x4xbf16>, tensor<?xi32> -> tensor<?x4x12xbf16>
  return
}

// -----

ds.weight @kv_b : tensor<112x32xbf16> {name = "kv_b"}
func.func @f(%qn: tensor<?x4x16xbf16>, %qr: tensor<?x2x8xbf16>, %c: tensor<?x32xbf16>, %kr: tensor<?x8xbf16>, %p: tensor<?xi32>, %cache: !ds.kv_cache) {
  // expected-error @+1 {{q_nope, q_rope and result must have the same number of heads}}
  %0 = ds.mla_attention @kv_b(%qn, %qr, %c, %kr, %p, %cache) {layer = 0 : i64, scale = 0.2 : f32} : tensor<?x4x16xbf16>, tensor<?x2x8xbf16>, tensor<?x32xbf16>, tensor<?x8xbf16>, tensor<?xi32> -> tensor<?x4x12xbf16>
  return
}

// -----

ds.weight @kv_b : tensor<112x32xbf16> {name = "kv_b"}
func.func @f(%qn: tensor<?x4x16xbf16>, %qr: tensor<?x4x8xbf16>, %c: tensor<?x1x32xbf16>, %kr: tensor<?x8xbf16>, %p: tensor<?xi32>, %cache: !ds.kv_cache) {
  // The latent cache entry is one vector per token.
  // expected-error @+1 {{c_kv must have rank 2}}
  %0 = ds.mla_attention @kv_b(%qn, %qr, %c, %kr, %p, %cache) {layer = 0 : i64, scale = 0.2 : f32} : tensor<?x4x16xbf16>, tensor<?x4x8xbf16>, tensor<?x1x32xbf16>, tensor<?x8xbf16>, tensor<?xi32> -> tensor<?x4x12xbf16>
  return
}

// RUN: ds-opt %s -split-input-file -verify-diagnostics

ds.weight @w : tensor<16xf32> {name = "w"}
func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x8xf32>) {
  // expected-error @+1 {{weight @w has shape [16], expected [8]}}
  %s, %n = ds.add_rms_norm @w(%a, %b) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return
}

// -----

ds.weight @g : tensor<16x8xf32> {name = "g"}
ds.weight @u : tensor<12x8xf32> {name = "u"}
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{up @u has shape [12, 8], expected [16, 8]}}
  %s = ds.swiglu_linear @g, @u(%x) : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

ds.weight @wq : tensor<8x8xf32> {name = "wq"}
ds.weight @wk : tensor<4x8xf32> {name = "wk"}
ds.weight @wv : tensor<4x8xf32> {name = "wv"}
ds.weight @bq : tensor<8xf32> {name = "bq"}
func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{biases must be given for all of q, k, v or none}}
  %q, %k, %v = ds.qkv_rope @wq, @wk, @wv(%x, %p) {rope = #ds.rope<theta = 10000.0, dim = 4>, bq = @bq} : tensor<?x8xf32>, tensor<?xi32> -> tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>
  return
}

// -----

ds.weight @qb : tensor<48x8xf32> {name = "qb"}
ds.weight @kva : tensor<20x8xf32> {name = "kva"}
ds.weight @kvn : tensor<16xf32> {name = "kvn"}
func.func @f(%x: tensor<?x8xf32>, %p: tensor<?xi32>) {
  // The rope part is 4 wide; a rope over 8 channels cannot be it.
  // expected-error @+1 {{rope dim must equal the rope part (4)}}
  %a, %b, %c, %d = ds.mla_project(%x, %p) {q_b = @qb, kv_a = @kva, kv_a_norm = @kvn, eps = 1.0e-6 : f32, rope = #ds.rope<theta = 10000.0, dim = 8>} : tensor<?x8xf32>, tensor<?xi32> -> tensor<?x4x8xf32>, tensor<?x4x4xf32>, tensor<?x16xf32>, tensor<?x4xf32>
  return
}

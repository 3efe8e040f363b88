// RUN: ds-opt %s -split-input-file -verify-diagnostics

ds.weight @lm : tensor<512x64xf32> {name = "lm_head.weight"}
func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{weight @lm has shape [512, 64], expected [256, 64]}}
  %0 = ds.logits @lm(%x) : tensor<?x64xf32> -> tensor<?x256xf32>
  return
}

// -----

ds.weight @lm : tensor<512x64xf32> {name = "lm_head.weight"}
func.func @f(%x: tensor<8x64xf32>, %rows: tensor<2xi32>) {
  // With rows, one logits row per selected token.
  // expected-error @+1 {{token dimension of result (8) does not match rows (2)}}
  %0 = ds.logits @lm(%x, rows %rows : tensor<2xi32>) : tensor<8x64xf32> -> tensor<8x512xf32>
  return
}

// -----

ds.weight @lm : tensor<512x64xf32> {name = "lm_head.weight"}
func.func @f(%x: tensor<?x64xf32>) {
  // Logits are always f32.
  // expected-error @+1 {{result #0 must be 2D tensor of 32-bit float values}}
  %0 = ds.logits @lm(%x) : tensor<?x64xf32> -> tensor<?x512xbf16>
  return
}

// RUN: ds-opt %s -split-input-file -verify-diagnostics

ds.weight @e : tensor<16x8xf32> {name = "e"}
func.func @f(%ids: tensor<?xi32>) {
  // The hidden size comes from the embedding weight.
  // expected-error @+1 {{weight @e has shape [16, 8], expected [?, 4]}}
  %0 = ds.embed @e(%ids) : tensor<?xi32> -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%ids: tensor<?xi32>) {
  // expected-error @+1 {{weight @missing does not reference a ds.weight}}
  %0 = ds.embed @missing(%ids) : tensor<?xi32> -> tensor<?x4xf32>
  return
}

// -----

ds.weight @e : tensor<16x8xf32> {name = "e"}
func.func @f(%ids: tensor<3xi32>) {
  // One row per token id.
  // expected-error @+1 {{token dimension of result (4) does not match ids (3)}}
  %0 = ds.embed @e(%ids) : tensor<3xi32> -> tensor<4x8xf32>
  return
}

// -----

ds.weight @n : tensor<16xf32> {name = "n"}
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{weight @n has shape [16], expected [8]}}
  %0 = ds.rms_norm @n(%x) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return
}

// -----

ds.weight @n : tensor<8xf32> {name = "n"}
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{eps must be non-negative}}
  %0 = ds.rms_norm @n(%x) {eps = -1.0 : f32} : tensor<?x8xf32>
  return
}

// -----

ds.weight @w : tensor<16x8xf32> {name = "w"}
func.func @f(%x: tensor<?x4xf32>) {
  // Weights are [out, in] as in Hugging Face checkpoints.
  // expected-error @+1 {{weight @w has shape [16, 8], expected [16, 4]}}
  %0 = ds.linear @w(%x) : tensor<?x4xf32> -> tensor<?x16xf32>
  return
}

// -----

ds.weight @w : tensor<16x8xf32> {name = "w"}
ds.weight @b : tensor<8xf32> {name = "b"}
func.func @f(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{bias @b has shape [8], expected [16]}}
  %0 = ds.linear @w(%x) {bias = @b} : tensor<?x8xf32> -> tensor<?x16xf32>
  return
}

// -----

ds.weight @w : tensor<16x8xf32> {name = "w"}
func.func @f(%x: tensor<?x2x4xf32>) {
  // expected-error @+1 {{input must have rank 2}}
  %0 = ds.linear @w(%x) : tensor<?x2x4xf32> -> tensor<?x16xf32>
  return
}

// -----

func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x8xbf16>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "ds.add"(%a, %b) : (tensor<?x8xf32>, tensor<?x8xbf16>) -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%a: tensor<?x8xf32>, %b: tensor<?x4xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "ds.swiglu"(%a, %b) : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return
}

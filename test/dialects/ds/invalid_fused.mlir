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

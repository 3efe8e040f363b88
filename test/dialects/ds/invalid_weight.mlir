// RUN: ds-opt %s -split-input-file -verify-diagnostics

// Weight element types are limited to what kernels can load.
// expected-error @+1 {{unsupported weight element type 'f64'}}
ds.weight @w : tensor<4x4xf64> {name = "w"}

// -----

// Dynamic shapes are not weights.
// expected-error @+1 {{type attribute of statically shaped tensor}}
ds.weight @w : tensor<?x4xf32> {name = "w"}

// -----

// Stacked experts need the leading dimension.
// expected-error @+1 {{stacked weight of 8 experts must have leading dimension 8}}
ds.weight @w : tensor<4x4x4xf32> {name = "e.{e}.w", experts = 8}

// -----

// Stacked experts need the {e} placeholder to find each expert's tensor.
// expected-error @+1 {{must contain the expert placeholder {e}}}
ds.weight @w : tensor<8x4x4xf32> {name = "e.w", experts = 8}

// -----

// A placeholder without experts is a typo.
// expected-error @+1 {{has {e} but no experts attribute}}
ds.weight @w : tensor<8x4x4xf32> {name = "e.{e}.w"}

// -----

// Block scales come with a block shape.
ds.weight @s : tensor<1x1xf32> {name = "s"}
// expected-error @+1 {{block-scaled weights need both 'scale' and 'block'}}
ds.weight @w : tensor<4x4xf8E4M3FN> {name = "w", scale = @s}

// -----

// The scale grid is ceil(N/128) x ceil(K/128).
ds.weight @s : tensor<1x1xf32> {name = "s"}
// expected-error @+1 {{scale @s has shape [1, 1], expected [2, 1]}}
ds.weight @w : tensor<200x100xf8E4M3FN> {name = "w", scale = @s, block = array<i64: 128, 128>}

// -----

// Scales are f32 (weight_scale_inv in DeepSeek-V3 checkpoints).
ds.weight @s : tensor<1x1xbf16> {name = "s"}
// expected-error @+1 {{scale @s must hold f32 values}}
ds.weight @w : tensor<100x100xf8E4M3FN> {name = "w", scale = @s, block = array<i64: 128, 128>}

// -----

// Weights live at module level only.
func.func @f() {
  // expected-error @+1 {{expects parent op 'builtin.module'}}
  ds.weight @w : tensor<4xf32> {name = "w"}
  return
}

// -----

// Only float matrices can be quantized.
// expected-error @+1 {{only matrices (or stacked expert matrices) can be quantized}}
ds.weight @w : tensor<8xf32> {name = "w", quant = "int8"}

// -----

// expected-error @+1 {{only f32/f16/bf16 weights can be quantized, got 'f8E4M3FN'}}
ds.weight @w : tensor<8x8xf8E4M3FN> {name = "w", quant = "int8"}

// RUN: ds-opt %s -split-input-file | FileCheck %s

// Defaults are elided when printing; every scaling kind round-trips.
// CHECK-LABEL: func.func @plain
// CHECK: #ds.rope<theta = 1.000000e+04, dim = 16>}
func.func @plain(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) -> tensor<?x4x16xf32> {
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 16, scaling = none, factor = 1.0>} : tensor<?x4x16xf32>, tensor<?xi32>
  return %0 : tensor<?x4x16xf32>
}

// -----

// CHECK-LABEL: func.func @linear
// CHECK: #ds.rope<theta = 1.000000e+04, dim = 16, scaling = linear, factor = 2.000000e+00>
func.func @linear(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) -> tensor<?x4x16xf32> {
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 16, scaling = linear, factor = 2.0>} : tensor<?x4x16xf32>, tensor<?xi32>
  return %0 : tensor<?x4x16xf32>
}

// -----

// Llama 3.1 frequency bands (DeepSeek-R1-Distill-Llama-8B).
// CHECK-LABEL: func.func @llama3
// CHECK: #ds.rope<theta = 5.000000e+05, dim = 16, scaling = llama3, factor = 8.000000e+00, original_max_position = 8192>
func.func @llama3(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) -> tensor<?x4x16xf32> {
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 500000.0, dim = 16, scaling = llama3, factor = 8.0, original_max_position = 8192, low_freq_factor = 1.0, high_freq_factor = 4.0>} : tensor<?x4x16xf32>, tensor<?xi32>
  return %0 : tensor<?x4x16xf32>
}

// -----

// Partial rotary: only the first 8 of 16 channels rotate.
// CHECK-LABEL: func.func @partial
// CHECK: #ds.rope<theta = 1.000000e+04, dim = 8, interleaved = true>
func.func @partial(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) -> tensor<?x4x16xf32> {
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true>} : tensor<?x4x16xf32>, tensor<?xi32>
  return %0 : tensor<?x4x16xf32>
}

// -----

// YaRN parameters keep full double precision through print and parse.
// CHECK-LABEL: func.func @yarn
// CHECK: #ds.rope<theta = 1.000000e+04, dim = 64, interleaved = true, scaling = yarn, factor = 4.000000e+01, original_max_position = 4096, mscale = 0.70710678118654702, mscale_all_dim = 0.70710678118654702>
func.func @yarn(%x: tensor<?x4x64xf32>, %p: tensor<?xi32>) -> tensor<?x4x64xf32> {
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 64, interleaved = true, scaling = yarn, factor = 40.0, original_max_position = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 0.70710678118654702, mscale_all_dim = 0.70710678118654702>} : tensor<?x4x64xf32>, tensor<?xi32>
  return %0 : tensor<?x4x64xf32>
}


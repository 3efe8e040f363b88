// RUN: ds-opt %s -split-input-file -verify-diagnostics

func.func @f(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope dim 32 exceeds head dim 16}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 32>} : tensor<?x4x16xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope dim must be a positive even number, got 7}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 7>} : tensor<?x4x16xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope theta must be positive}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 0.0, dim = 16>} : tensor<?x4x16xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rope scaling 'yarn' needs original_max_position > 0}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 16, scaling = yarn, factor = 4.0>} : tensor<?x4x16xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{llama3 rope scaling needs high_freq_factor > low_freq_factor}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 500000.0, dim = 16, scaling = llama3, factor = 8.0, original_max_position = 8192, low_freq_factor = 4.0, high_freq_factor = 1.0>} : tensor<?x4x16xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<8x4x16xf32>, %p: tensor<3xi32>) {
  // expected-error @+1 {{token dimension of positions (3) does not match input (8)}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 16>} : tensor<8x4x16xf32>, tensor<3xi32>
  return
}

// -----

func.func @f(%x: tensor<?x64xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{input must have rank 3}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 16>} : tensor<?x64xf32>, tensor<?xi32>
  return
}

// -----

func.func @f(%x: tensor<?x4x16xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{yarn rope scaling needs beta_fast > beta_slow}}
  %0 = ds.rope %x, %p {rope = #ds.rope<theta = 10000.0, dim = 16, scaling = yarn, factor = 4.0, original_max_position = 4096, beta_fast = 1.0, beta_slow = 32.0>} : tensor<?x4x16xf32>, tensor<?xi32>
  return
}

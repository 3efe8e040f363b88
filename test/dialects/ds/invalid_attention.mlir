// RUN: ds-opt %s -split-input-file -verify-diagnostics

func.func @f(%q: tensor<?x6x8xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x4x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // GQA: query heads come in equal groups per kv head.
  // expected-error @+1 {{query heads (6) must be a multiple of kv heads (4)}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.35 : f32} : tensor<?x6x8xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x6x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x8x8xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x2x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // expected-error @+1 {{k has 4 heads but v has 2}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.35 : f32} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x8x16xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x4x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // expected-error @+1 {{q head dim 16 != k head dim 8}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.35 : f32} : tensor<?x8x16xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x8x8xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x4x12xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // The output head dim is v's.
  // expected-error @+1 {{result must be [T, 8, 12]}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.35 : f32} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x4x12xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x8x8xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x4x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // expected-error @+1 {{scale must be positive}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.0 : f32} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x8x8xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x4x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // expected-error @+1 {{layer must be non-negative}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = -1 : i64, scale = 0.35 : f32} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<?x8x8xf32>, %k: tensor<?x4x8xf32>, %v: tensor<?x4x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // expected-error @+1 {{sliding_window must be positive}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.35 : f32, sliding_window = 0 : i64} : tensor<?x8x8xf32>, tensor<?x4x8xf32>, tensor<?x4x8xf32>, tensor<?xi32> -> tensor<?x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<5x8x8xf32>, %k: tensor<4x4x8xf32>, %v: tensor<4x4x8xf32>, %p: tensor<?xi32>, %c: !ds.kv_cache) {
  // expected-error @+1 {{token dimension of k (4) does not match q (5)}}
  %0 = ds.attention %q, %k, %v, %p, %c {layer = 0 : i64, scale = 0.35 : f32} : tensor<5x8x8xf32>, tensor<4x4x8xf32>, tensor<4x4x8xf32>, tensor<?xi32> -> tensor<5x8x8xf32>
  return
}

// RUN: ds-opt %s -split-input-file -verify-diagnostics | FileCheck %s
// dsk.launch against the launch ABI table (runtime/src/abi/launch_abi.cpp): operand counts,
// kinds and ranks, weight slots in order (`unit` = absent optional slot), parameters.

// Positive: optional slots left out at the end, or `unit` before a present slot.
// CHECK-LABEL: func.func @ok
// CHECK: dsk.launch linear {{.*}} weights [@w] params {}
// CHECK: dsk.launch mla_project {{.*}} weights [unit, unit, @q_b, @kv_a, @kv_n]
ds.weight @w : tensor<8x8xf32> {name = "w"}
ds.weight @q_b : tensor<64x16xf32> {name = "q_b"}
ds.weight @kv_a : tensor<24x16xf32> {name = "kv_a"}
ds.weight @kv_n : tensor<16xf32> {name = "kv_n"}
func.func @ok(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x8xf32> {
  %x = dsk.alloc tokens : memref<?x8xf32>
  %y = dsk.alloc tokens : memref<?x8xf32>
  dsk.launch linear ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [@w] params {}
  %in = dsk.alloc tokens : memref<?x16xf32>
  %qn = dsk.alloc tokens : memref<?x4x8xf32>
  %qr = dsk.alloc tokens : memref<?x4x8xf32>
  %c = dsk.alloc tokens : memref<?x16xf32>
  %kr = dsk.alloc tokens : memref<?x8xf32>
  dsk.launch mla_project ins(%in, %pos : memref<?x16xf32>, memref<?xi32>) outs(%qn, %qr, %c, %kr : memref<?x4x8xf32>, memref<?x4x8xf32>, memref<?x16xf32>, memref<?x8xf32>) weights [unit, unit, @q_b, @kv_a, @kv_n] params {eps = 1.0e-6 : f32, rope = #ds.rope<theta = 10000.0, dim = 8, interleaved = true>}
  return %y : memref<?x8xf32>
}

// -----

ds.weight @w : tensor<8xf32> {name = "w"}
func.func @missing_param(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{missing parameter 'eps' (rms_norm(in: x; out: y; weights: weight; params: eps))}}
  dsk.launch rms_norm ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [@w] params {}
  return
}

// -----

ds.weight @w : tensor<8xf32> {name = "w"}
func.func @unknown_param(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{unknown parameter 'epsilon'}}
  dsk.launch rms_norm ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [@w] params {eps = 1.0e-5 : f32, epsilon = 1.0e-5 : f32}
  return
}

// -----

ds.weight @w : tensor<8xf32> {name = "w"}
func.func @param_type(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{parameter 'eps' has the wrong type}}
  dsk.launch rms_norm ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [@w] params {eps = 1 : i64}
  return
}

// -----

func.func @too_few_operands(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{has 1 inputs and 1 outputs; add(in: a, b; out: y) takes 2 and 1}}
  dsk.launch add ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [] params {}
  return
}

// -----

func.func @operand_kind(%x: memref<?x2x4xf32>, %p: memref<?xf32>) {
  %y = dsk.alloc tokens : memref<?x2x4xf32>
  // expected-error @+1 {{input 'positions' must be i32 indices}}
  dsk.launch rope ins(%x, %p : memref<?x2x4xf32>, memref<?xf32>) outs(%y : memref<?x2x4xf32>) weights [] params {rope = #ds.rope<theta = 10000.0, dim = 4>}
  return
}

// -----

func.func @operand_rank(%x: memref<?x8xf32>, %p: memref<?xi32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{input 'x' must have rank 3}}
  dsk.launch rope ins(%x, %p : memref<?x8xf32>, memref<?xi32>) outs(%y : memref<?x8xf32>) weights [] params {rope = #ds.rope<theta = 10000.0, dim = 4>}
  return
}

// -----

func.func @required_weight(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{weights: required weight slot 'weight' is absent}}
  dsk.launch linear ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [] params {}
  return
}

// -----

ds.weight @w : tensor<8x8xf32> {name = "w"}
func.func @too_many_weights(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{weights: 3 weights, but linear takes 2}}
  dsk.launch linear ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [@w, @w, @w] params {}
  return
}

// -----

ds.weight @w : tensor<24x8xf32> {name = "w"}
ds.weight @b : tensor<8xf32> {name = "b"}
func.func @group(%x: memref<?x8xf32>, %p: memref<?xi32>) {
  %q = dsk.alloc tokens : memref<?x2x4xf32>
  %k = dsk.alloc tokens : memref<?x1x4xf32>
  %v = dsk.alloc tokens : memref<?x1x4xf32>
  // expected-error @+1 {{weights: weight slot 'bk' is absent but 'bq' of its group 'bias' is present}}
  dsk.launch qkv_rope ins(%x, %p : memref<?x8xf32>, memref<?xi32>) outs(%q, %k, %v : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>) weights [@w, @w, @w, @b] params {rope = #ds.rope<theta = 10000.0, dim = 4>}
  return
}

// -----

func.func @weight_kind(%x: memref<?x8xf32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{weights are symbol references or `unit`}}
  dsk.launch linear ins(%x : memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights ["w"] params {}
  return
}

// -----

// The KV cache: attention takes the step's !dsk.kv_cache, of its layout and shapes.
func.func @attention_without_cache(%q: memref<?x2x4xf32>, %k: memref<?x1x4xf32>, %p: memref<?xi32>) {
  %y = dsk.alloc tokens : memref<?x2x4xf32>
  // expected-error @+1 {{needs the step's KV cache}}
  dsk.launch attention ins(%q, %k, %k, %p : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>, memref<?xi32>) outs(%y : memref<?x2x4xf32>) weights [] params {layer = 0 : i64, scale = 0.5 : f32}
  return
}

// -----

func.func @layer_past_cache(%q: memref<?x2x4xf32>, %k: memref<?x1x4xf32>, %p: memref<?xi32>, %kv: !dsk.kv_cache<gqa, layers = 2, block = 16, kv_heads = 1, head_dim = 4, v_dim = 4, f32>) {
  %y = dsk.alloc tokens : memref<?x2x4xf32>
  // expected-error @+1 {{names KV layer 2 of 2}}
  dsk.launch attention kv(%kv : !dsk.kv_cache<gqa, layers = 2, block = 16, kv_heads = 1, head_dim = 4, v_dim = 4, f32>) ins(%q, %k, %k, %p : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>, memref<?xi32>) outs(%y : memref<?x2x4xf32>) weights [] params {layer = 2 : i64, scale = 0.5 : f32}
  return
}

// -----

func.func @cache_shape(%q: memref<?x2x4xf32>, %k: memref<?x1x4xf32>, %p: memref<?xi32>, %kv: !dsk.kv_cache<gqa, layers = 2, block = 16, kv_heads = 2, head_dim = 4, v_dim = 4, f32>) {
  %y = dsk.alloc tokens : memref<?x2x4xf32>
  // expected-error @+1 {{input 'k' must have rows of [2, 4] to match}}
  dsk.launch attention kv(%kv : !dsk.kv_cache<gqa, layers = 2, block = 16, kv_heads = 2, head_dim = 4, v_dim = 4, f32>) ins(%q, %k, %k, %p : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>, memref<?xi32>) outs(%y : memref<?x2x4xf32>) weights [] params {layer = 0 : i64, scale = 0.5 : f32}
  return
}

// -----

func.func @cache_layout(%q: memref<?x2x4xf32>, %k: memref<?x1x4xf32>, %p: memref<?xi32>, %kv: !dsk.kv_cache<mla, layers = 2, block = 16, rank = 8, rope_dim = 4, f32>) {
  %y = dsk.alloc tokens : memref<?x2x4xf32>
  // expected-error @+1 {{needs a gqa KV cache}}
  dsk.launch attention kv(%kv : !dsk.kv_cache<mla, layers = 2, block = 16, rank = 8, rope_dim = 4, f32>) ins(%q, %k, %k, %p : memref<?x2x4xf32>, memref<?x1x4xf32>, memref<?x1x4xf32>, memref<?xi32>) outs(%y : memref<?x2x4xf32>) weights [] params {layer = 0 : i64, scale = 0.5 : f32}
  return
}

// -----

func.func @cache_on_other_kernel(%x: memref<?x8xf32>, %kv: !dsk.kv_cache<mla, layers = 2, block = 16, rank = 8, rope_dim = 4, f32>) {
  %y = dsk.alloc tokens : memref<?x8xf32>
  // expected-error @+1 {{does not take a KV cache}}
  dsk.launch add kv(%kv : !dsk.kv_cache<mla, layers = 2, block = 16, rank = 8, rope_dim = 4, f32>) ins(%x, %x : memref<?x8xf32>, memref<?x8xf32>) outs(%y : memref<?x8xf32>) weights [] params {}
  return
}

// -----

// expected-error @+1 {{kv_cache element type must be f32, bf16, f16, i8 or f8E4M3FN, got 'i32'}}
func.func @bad_cache_type(%kv: !dsk.kv_cache<mla, layers = 2, block = 16, rank = 8, rope_dim = 4, i32>) {
  return
}

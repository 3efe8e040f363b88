// RUN: ds-opt %s -split-input-file -verify-diagnostics
// Verifier errors of weight layouts: tensor-parallel shards, collectives, merged (concat) weights.

// expected-error @+1 {{a sharded weight needs the module attribute ds.tp}}
ds.weight @w : tensor<4x8xf32> {name = "w", shard = array<i64: 0, 2>}

// -----

module attributes {ds.tp = 4 : i64} {
  // expected-error @+1 {{shard pieces 3 must divide ds.tp = 4}}
  ds.weight @w : tensor<4x8xf32> {name = "w", shard = array<i64: 0, 3>}
}

// -----

module attributes {ds.tp = 2 : i64} {
  // expected-error @+1 {{shard dimension 2 is outside the rank-2 type}}
  ds.weight @w : tensor<4x8xf32> {name = "w", shard = array<i64: 2, 2>}
}

// -----

module attributes {ds.tp = 2 : i64} {
  // expected-error @+1 {{shard must be [dim, pieces]}}
  ds.weight @w : tensor<4x8xf32> {name = "w", shard = array<i64: 0>}
}

// -----

// Expert parallelism cuts stacked experts along dimension 0: `experts` is the rank-local count.
module attributes {ds.tp = 2 : i64} {
  // expected-error @+1 {{stacked weight of 2 experts must have leading dimension 2, got 'tensor<1x4x8xf32>'}}
  ds.weight @w : tensor<1x4x8xf32> {name = "w{e}", experts = 2 : i64, shard = array<i64: 0, 2>}
}

// -----

module attributes {ds.tp = 2 : i64} {
  func.func @f(%x: tensor<?x8xf32>) -> tensor<?x24xf32> {
    // expected-error @+1 {{gathers 3 slices but ds.tp = 2}}
    %y = ds.all_gather %x : tensor<?x8xf32> -> tensor<?x24xf32>
    return %y : tensor<?x24xf32>
  }
}

// -----

func.func @f(%x: tensor<?x8xf32>) -> tensor<?x12xf32> {
  // expected-error @+1 {{result columns 12 must be a multiple of the input's 8}}
  %y = ds.all_gather %x : tensor<?x8xf32> -> tensor<?x12xf32>
  return %y : tensor<?x12xf32>
}

// -----

func.func @f(%x: tensor<4x8xf32>) -> tensor<5x16xf32> {
  // expected-error @+1 {{token dimension}}
  %y = ds.all_gather %x : tensor<4x8xf32> -> tensor<5x16xf32>
  return %y : tensor<5x16xf32>
}

// -----

ds.weight @e : tensor<16x8xf32> {name = "e"}
func.func @f(%ids: tensor<?xi32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{rows_per_rank must be positive, got 0}}
  %h = ds.embed @e(%ids) {rows_per_rank = 0 : i64} : tensor<?xi32> -> tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}

// -----

ds.weight @e : tensor<16x8xf32> {name = "e"}
func.func @f(%ids: tensor<?xi32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{weight @e has shape [16, 8], expected [8, 8]}}
  %h = ds.embed @e(%ids) {rows_per_rank = 8 : i64} : tensor<?xi32> -> tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}

// -----

// A sharded FP8 weight's scale grid is checked against the checkpoint (full) shape.
module attributes {ds.tp = 2 : i64} {
  ds.weight @w : tensor<128x256xf8E4M3FN> {name = "w", scale = @s, block = array<i64: 128, 128>, shard = array<i64: 0, 2>}
  ds.weight @s : tensor<2x2xf32> {name = "s"}
  // expected-error @+1 {{scale @s2 has shape [1, 2], expected [2, 2]}}
  ds.weight @w2 : tensor<128x256xf8E4M3FN> {name = "w2", scale = @s2, block = array<i64: 128, 128>, shard = array<i64: 0, 2>}
  ds.weight @s2 : tensor<1x2xf32> {name = "s2"}
}

// -----

func.func @f(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  // CHECK the round trip of the collectives in the same file: no diagnostics expected here.
  %y = ds.all_reduce %x : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// expected-error @+1 {{concat needs at least two checkpoint tensors}}
ds.weight @w : tensor<4x8xf32> {name = "a", concat = ["a"]}

// -----

module attributes {ds.tp = 2 : i64} {
  // expected-error @+1 {{a concatenated weight cannot be stacked experts, block-scaled or sharded}}
  ds.weight @w : tensor<4x8xf32> {name = "a", concat = ["a", "b"], shard = array<i64: 0, 2>}
}

// -----

ds.weight @m : tensor<16x8xf32> {name = "m", concat = ["q", "k", "v"]}
ds.weight @k : tensor<4x8xf32> {name = "k"}
func.func @f(%x: tensor<?x8xf32>, %pos: tensor<?xi32>) -> tensor<?x2x4xf32> {
  // expected-error @+1 {{wq, wk, wv must be three weights or one merged weight}}
  %q, %k, %v = ds.qkv_rope @m, @k, @m(%x, %pos) {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x8xf32>, tensor<?xi32> -> tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>
  return %q : tensor<?x2x4xf32>
}

// -----

ds.weight @m : tensor<12x8xf32> {name = "m", concat = ["q", "k", "v"]}
func.func @f(%x: tensor<?x8xf32>, %pos: tensor<?xi32>) -> tensor<?x2x4xf32> {
  // expected-error @+1 {{wq @m has shape [12, 8], expected [16, 8]}}
  %q, %k, %v = ds.qkv_rope @m, @m, @m(%x, %pos) {rope = #ds.rope<theta = 10000.0, dim = 4>} : tensor<?x8xf32>, tensor<?xi32> -> tensor<?x2x4xf32>, tensor<?x1x4xf32>, tensor<?x1x4xf32>
  return %q : tensor<?x2x4xf32>
}

// -----

ds.weight @m : tensor<12x8xf32> {name = "m", concat = ["g", "u"]}
func.func @f(%x: tensor<?x8xf32>) -> tensor<?x12xf32> {
  // expected-error @+1 {{gate @m has shape [12, 8], expected [24, 8]}}
  %s = ds.swiglu_linear @m, @m(%x) : tensor<?x8xf32> -> tensor<?x12xf32>
  return %s : tensor<?x12xf32>
}

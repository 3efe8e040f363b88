// RUN: ds-opt %s -split-input-file -verify-diagnostics

ds.weight @g : tensor<16x64xf32> {name = "g"}
func.func @f(%x: tensor<?x64xf32>) {
  // 16 experts cannot be split into 3 groups.
  // expected-error @+1 {{16 experts cannot form 3 groups}}
  %w, %i = ds.moe_gate @g(%x) {top_k = 2 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method group_limited_greedy>, n_group = 3 : i64, topk_group = 1 : i64, norm_topk_prob = false} : tensor<?x64xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

ds.weight @g : tensor<16x64xf32> {name = "g"}
func.func @f(%x: tensor<?x64xf32>) {
  // 2 of 8 groups hold only 4 experts.
  // expected-error @+1 {{top_k 6 exceeds the 4 experts of the selected groups}}
  %w, %i = ds.moe_gate @g(%x) {top_k = 6 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method group_limited_greedy>, n_group = 8 : i64, topk_group = 2 : i64, norm_topk_prob = false} : tensor<?x64xf32> -> tensor<?x6xf32>, tensor<?x6xi32>
  return
}

// -----

ds.weight @g : tensor<16x64xf32> {name = "g"}
func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{needs 1 <= topk_group (5) <= n_group (4)}}
  %w, %i = ds.moe_gate @g(%x) {top_k = 2 : i64, scoring = #ds<moe_scoring sigmoid>, topk_method = #ds<moe_topk_method greedy>, n_group = 4 : i64, topk_group = 5 : i64, norm_topk_prob = true} : tensor<?x64xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

ds.weight @g : tensor<16x64xf32> {name = "g"}
func.func @f(%x: tensor<?x64xf32>) {
  // DeepSeek-V3 routing selects with the correction bias.
  // expected-error @+1 {{topk_method noaux_tc needs a correction_bias}}
  %w, %i = ds.moe_gate @g(%x) {top_k = 2 : i64, scoring = #ds<moe_scoring sigmoid>, topk_method = #ds<moe_topk_method noaux_tc>, norm_topk_prob = true} : tensor<?x64xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

ds.weight @g : tensor<16x64xf32> {name = "g"}
ds.weight @b : tensor<8xf32> {name = "b"}
func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{correction_bias @b has shape [8], expected [16]}}
  %w, %i = ds.moe_gate @g(%x) {top_k = 2 : i64, scoring = #ds<moe_scoring sigmoid>, topk_method = #ds<moe_topk_method noaux_tc>, norm_topk_prob = true, correction_bias = @b} : tensor<?x64xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return
}

// -----

ds.weight @g : tensor<16x64xf32> {name = "g"}
func.func @f(%x: tensor<?x64xf32>) {
  // expected-error @+1 {{results must be [T, 2]}}
  %w, %i = ds.moe_gate @g(%x) {top_k = 2 : i64, scoring = #ds<moe_scoring softmax>, topk_method = #ds<moe_topk_method greedy>, norm_topk_prob = false} : tensor<?x64xf32> -> tensor<?x4xf32>, tensor<?x4xi32>
  return
}

// -----

ds.weight @gate : tensor<16x32x64xf32> {name = "e.{e}.gate", experts = 16}
ds.weight @up : tensor<16x32x64xf32> {name = "e.{e}.up", experts = 16}
ds.weight @down : tensor<16x32x64xf32> {name = "e.{e}.down", experts = 16}
func.func @f(%x: tensor<?x64xf32>, %w: tensor<?x4xf32>, %i: tensor<?x4xi32>) {
  // down is [E, hidden, intermediate].
  // expected-error @+1 {{down @down has shape [16, 32, 64], expected [16, 64, 32]}}
  %0 = ds.moe_experts(%x, %w, %i) {gate = @gate, up = @up, down = @down} : tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x64xf32>
  return
}

// -----

ds.weight @gate : tensor<16x32x64xf32> {name = "e.{e}.gate", experts = 16}
ds.weight @up : tensor<16x32x64xf32> {name = "e.{e}.up", experts = 16}
ds.weight @down : tensor<16x64x32xf32> {name = "e.{e}.down", experts = 16}
ds.weight @sg : tensor<32x64xf32> {name = "sg"}
func.func @f(%x: tensor<?x64xf32>, %w: tensor<?x4xf32>, %i: tensor<?x4xi32>) {
  // expected-error @+1 {{shared experts need shared_gate, shared_up and shared_down}}
  %0 = ds.moe_experts(%x, %w, %i) {gate = @gate, up = @up, down = @down, shared_gate = @sg} : tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x64xf32>
  return
}

// -----

ds.weight @gate : tensor<16x32x64xf32> {name = "e.{e}.gate", experts = 16}
ds.weight @up : tensor<16x32x64xf32> {name = "e.{e}.up", experts = 16}
ds.weight @down : tensor<16x64x32xf32> {name = "e.{e}.down", experts = 16}
func.func @f(%x: tensor<?x64xf32>, %w: tensor<?x4xf32>, %i: tensor<?x2xi32>) {
  // expected-error @+1 {{weights and ids must have the same top_k}}
  %0 = ds.moe_experts(%x, %w, %i) {gate = @gate, up = @up, down = @down} : tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x2xi32> -> tensor<?x64xf32>
  return
}

// -----

// Expert parallelism: the rank-local gate must hold experts_per_rank experts.
module attributes {ds.tp = 2 : i64} {
  ds.weight @gate : tensor<8x32x64xf32> {name = "e.{e}.gate", experts = 8, shard = array<i64: 0, 2>}
  ds.weight @up : tensor<8x32x64xf32> {name = "e.{e}.up", experts = 8, shard = array<i64: 0, 2>}
  ds.weight @down : tensor<8x64x32xf32> {name = "e.{e}.down", experts = 8, shard = array<i64: 0, 2>}
  func.func @f(%x: tensor<?x64xf32>, %w: tensor<?x4xf32>, %i: tensor<?x4xi32>) {
    // expected-error @+1 {{experts_per_rank 16 differs from the 8 experts of the rank-local gate weight}}
    %0 = ds.moe_experts(%x, %w, %i) {gate = @gate, up = @up, down = @down, experts_per_rank = 16 : i64} : tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x64xf32>
    return
  }
}

// -----

ds.weight @gate : tensor<16x32x64xf32> {name = "e.{e}.gate", experts = 16}
ds.weight @up : tensor<16x32x64xf32> {name = "e.{e}.up", experts = 16}
ds.weight @down : tensor<16x64x32xf32> {name = "e.{e}.down", experts = 16}
func.func @f(%x: tensor<?x64xf32>, %w: tensor<?x4xf32>, %i: tensor<?x4xi32>) {
  // expected-error @+1 {{experts_per_rank must be positive, got 0}}
  %0 = ds.moe_experts(%x, %w, %i) {gate = @gate, up = @up, down = @down, experts_per_rank = 0 : i64} : tensor<?x64xf32>, tensor<?x4xf32>, tensor<?x4xi32> -> tensor<?x64xf32>
  return
}

// RUN: ds-opt %s -split-input-file -verify-diagnostics -ds-shard-tensor-parallel=tp=2

// Sharding runs on the model-level graph, before fusion.
ds.weight @n : tensor<8xf32> {name = "n"}
func.func @forward(%a: tensor<?x8xf32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{is fused; run ds-shard-tensor-parallel before fusion}}
  %s, %y = ds.add_rms_norm @n(%a, %a) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// One weight, two incompatible roles: column-parallel for the first linear (its result feeds
// a row-parallel one), whole for the second (its result is returned).
ds.weight @w : tensor<8x8xf32> {name = "w"}
ds.weight @d : tensor<8x8xf32> {name = "d"}
func.func @forward(%x: tensor<?x8xf32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x8xf32> {
  %a = ds.linear @w(%x) : tensor<?x8xf32> -> tensor<?x8xf32>
  %b = ds.linear @d(%a) : tensor<?x8xf32> -> tensor<?x8xf32>
  // expected-error @+1 {{uses weight @w with a different tensor-parallel cut than an earlier op}}
  %e = ds.linear @w(%b) : tensor<?x8xf32> -> tensor<?x8xf32>
  return %e : tensor<?x8xf32>
}

// -----

// expected-error @+1 {{module is already sharded (ds.tp is set)}}
module attributes {ds.tp = 2 : i64} {
  func.func @forward(%x: tensor<?x8xf32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x8xf32> {
    return %x : tensor<?x8xf32>
  }
}

// -----

// expected-error @+1 {{expected a func.func @forward to shard}}
module {
  func.func @step(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    return %x : tensor<?x8xf32>
  }
}

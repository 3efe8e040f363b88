// The Plan phase (ds-compile --compile-to=plan) as one pipeline: ds-convert-to-kernels, then
// ds-schedule-plan-memory unless plan-memory=false.
// RUN: ds-opt %s --ds-pipeline-plan | FileCheck %s
// RUN: ds-opt %s --ds-pipeline-plan="plan-memory=false" | FileCheck %s --check-prefix=NOPLAN
// RUN: ds-opt %s --ds-pipeline-plan | ds-opt | FileCheck %s

// CHECK-LABEL: func.func @step
// CHECK-SAME: dsk.arena_bytes_per_token
// CHECK: dsk.alloc tokens {offset = {{[0-9]+}} : i64} : memref<?x8xf32>
// CHECK: dsk.launch embed
// CHECK: dsk.launch rms_norm
// CHECK: dsk.alloc logit_rows {offset = 0 : i64} : memref<?x16xf32>
// CHECK: dsk.launch logits
// CHECK-NOT: func.func @forward
// NOPLAN-LABEL: func.func @step
// NOPLAN-NOT: offset
// NOPLAN-NOT: dsk.arena_bytes_per_token
// NOPLAN: dsk.launch logits
ds.weight @e : tensor<16x8xf32> {name = "e"}
ds.weight @n : tensor<8xf32> {name = "n"}
func.func @forward(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.kv_cache, %rows: tensor<?xi32>) -> tensor<?x16xf32> {
  %h = ds.embed @e(%ids) : tensor<?xi32> -> tensor<?x8xf32>
  %n = ds.rms_norm @n(%h) {eps = 1.0e-5 : f32} : tensor<?x8xf32>
  %l = ds.logits @e(%n, rows %rows : tensor<?xi32>) : tensor<?x8xf32> -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// Negative: a bad value and an unknown option are errors naming them.
// RUN: not ds-opt %s --ds-pipeline-plan="plan-memory=sometimes" 2>&1 | FileCheck %s --check-prefix=BADVAL
// BADVAL: plan-memory
// RUN: not ds-opt %s --ds-pipeline-plan="fuse=true" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// UNKNOWN: fuse

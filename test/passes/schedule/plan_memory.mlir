// RUN: ds-opt %s -split-input-file -ds-schedule-plan-memory -verify-diagnostics | FileCheck %s

// A chain a -> b -> c -> d: a is dead once b is written... but b's launch reads a while writing
// b, so a and b overlap; c can take a's place, d can take b's.
// CHECK-LABEL: func.func @step
// CHECK-SAME: dsk.arena_bytes_per_logit_row = 0 : i64, dsk.arena_bytes_per_token = 512 : i64, dsk.unplanned_bytes_per_logit_row = 0 : i64, dsk.unplanned_bytes_per_token = 1024 : i64
// CHECK: %[[A:.*]] = dsk.alloc tokens {offset = [[OA:[0-9]+]] : i64}
// CHECK: %[[B:.*]] = dsk.alloc tokens {offset = [[OB:[0-9]+]] : i64}
// CHECK: %[[C:.*]] = dsk.alloc tokens {offset = [[OA]] : i64}
// CHECK: %[[D:.*]] = dsk.alloc tokens {offset = [[OB]] : i64}
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x64xf32> {
  %a = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch embed ins(%ids : memref<?xi32>) outs(%a : memref<?x64xf32>) weights [@e] params {}
  %b = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch add ins(%a, %a : memref<?x64xf32>, memref<?x64xf32>) outs(%b : memref<?x64xf32>) weights [] params {}
  %c = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch add ins(%b, %b : memref<?x64xf32>, memref<?x64xf32>) outs(%c : memref<?x64xf32>) weights [] params {}
  %d = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch add ins(%c, %c : memref<?x64xf32>, memref<?x64xf32>) outs(%d : memref<?x64xf32>) weights [] params {}
  return %d : memref<?x64xf32>
}

// -----

// A use through a view keeps the root buffer alive: %a is read (as %v) by the last launch,
// so %u cannot take its bytes but can take %b's, dead after the logits launch; logit rows get
// their own arena.
// CHECK-LABEL: func.func @step
// CHECK-SAME: dsk.arena_bytes_per_logit_row = 64 : i64, dsk.arena_bytes_per_token = 512 : i64, dsk.unplanned_bytes_per_logit_row = 64 : i64, dsk.unplanned_bytes_per_token = 640 : i64
// CHECK: dsk.alloc tokens {offset = 0 : i64} : memref<?x64xf32>
// CHECK: dsk.alloc tokens {offset = 256 : i64} : memref<?x32xf32>
// CHECK: dsk.alloc logit_rows {offset = 0 : i64} : memref<?x16xf32>
// CHECK: dsk.alloc tokens {offset = 256 : i64} : memref<?x4x16xf32>
func.func @step(%ids: memref<?xi32>, %pos: memref<?xi32>, %rows: memref<?xi32>) -> memref<?x16xf32> {
  %a = dsk.alloc tokens : memref<?x64xf32>
  dsk.launch embed ins(%ids : memref<?xi32>) outs(%a : memref<?x64xf32>) weights [@e] params {}
  %v = dsk.view %a : memref<?x64xf32> -> memref<?x4x16xf32>
  %b = dsk.alloc tokens : memref<?x32xf32>
  dsk.launch linear ins(%a : memref<?x64xf32>) outs(%b : memref<?x32xf32>) weights [@w] params {}
  %l = dsk.alloc logit_rows : memref<?x16xf32>
  dsk.launch logits ins(%b, %rows : memref<?x32xf32>, memref<?xi32>) outs(%l : memref<?x16xf32>) weights [@e] params {}
  %u = dsk.alloc tokens : memref<?x4x16xf32>
  dsk.launch add ins(%v, %v : memref<?x4x16xf32>, memref<?x4x16xf32>) outs(%u : memref<?x4x16xf32>) weights [] params {}
  return %l : memref<?x16xf32>
}

// -----

// The pass plans the lowered step only.
// expected-error @+1 {{expected a func.func @step (run ds-convert-to-kernels first)}}
module {
}

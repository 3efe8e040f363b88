// RUN: ds-opt %S/sample_llama_layer.mlir --mlir-print-op-generic | FileCheck %s --check-prefix=GENERIC
// RUN: ds-opt %S/sample_llama_layer.mlir --mlir-print-op-generic | ds-opt | FileCheck %s
// RUN: ds-opt %S/sample_llama_layer.mlir --emit-bytecode | ds-opt | FileCheck %s

// The demo module survives the generic form and bytecode unchanged.
// GENERIC: "ds.embed"(%{{.*}}) <{weight = @embed}>
// GENERIC: "ds.logits"(%{{.*}}, %{{.*}}) <{weight = @embed}>
// CHECK: ds.embed @embed(
// CHECK: ds.attention
// CHECK: ds.logits @embed({{.*}}, rows

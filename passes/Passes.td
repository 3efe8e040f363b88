// Declarations of every ds pass, grouped by the folder holding its .cpp.
#ifndef DS_PASSES_TD
#define DS_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// graph/: target-independent rewrites of the ds graph
//===----------------------------------------------------------------------===//

def DropUnusedWeightsPass : Pass<"ds-graph-drop-unused-weights", "::mlir::ModuleOp"> {
  let summary = "Erases ds.weight declarations that no op references";
  let description = [{
    Weights are streamed into the artifact from their declarations, so a
    declaration left behind by a rewrite (e.g. q/k/v merged into one GEMM)
    would cost disk and load time. A weight counts as used when any op other
    than a ds.weight refers to it, or a used weight names it as its `scale`.

    Before:
    ```mlir
    ds.weight @used : tensor<4x4xf32> {name = "used"}
    ds.weight @dead : tensor<4x4xf32> {name = "dead"}
    func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
      %y = ds.linear @used(%x) : tensor<?x4xf32> -> tensor<?x4xf32>
      return %y : tensor<?x4xf32>
    }
    ```
    After: `@dead` is gone.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
  let statistics = [
    Statistic<"numErased", "num-erased", "Number of weight declarations erased">
  ];
}

#endif // DS_PASSES_TD

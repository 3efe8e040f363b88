// ds-codegen-tile-and-vectorize: linalg kernels on memrefs -> scf loops over rows of vector ops.
#include "passes/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Affine/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/Linalg/Transforms/TilingInterfaceImpl.h"
#include "mlir/Dialect/MemRef/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/IR/ValueBoundsOpInterfaceImpl.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/Vector/Transforms/VectorRewritePatterns.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#define DEBUG_TYPE "ds-codegen-tile-and-vectorize"

namespace mlir::ds {
#define GEN_PASS_DEF_TILEANDVECTORIZEPASS
#include "passes/Passes.h.inc"

namespace {

struct TileAndVectorizePass : impl::TileAndVectorizePassBase<TileAndVectorizePass> {
  using Base::Base;

  // Tiling and masked vectorization query these interfaces, which live outside the dialects.
  void getDependentDialects(DialectRegistry& registry) const override {
    Base::getDependentDialects(registry);
    linalg::registerTilingInterfaceExternalModels(registry);
    linalg::registerValueBoundsOpInterfaceExternalModels(registry);
    affine::registerValueBoundsOpInterfaceExternalModels(registry);
    arith::registerValueBoundsOpInterfaceExternalModels(registry);
    memref::registerValueBoundsOpInterfaceExternalModels(registry);
    scf::registerValueBoundsOpInterfaceExternalModels(registry);
  }

  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    // Unless given, the width is the f32 lanes of the closest #ds.target (the default without one).
    int64_t width = vectorWidth;
    if (!vectorWidth.hasValue())
      if (TargetAttr target = lookupTarget(fn)) width = target.getF32Lanes();
    if (width < 1) {
      fn.emitError() << "vector-width must be at least 1, got " << width;
      return signalPassFailure();
    }
    SmallVector<linalg::LinalgOp> ops;
    fn.walk([&](linalg::LinalgOp op) {
      if (op.hasPureBufferSemantics()) ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : ops) {
      // One row per iteration, the innermost loop in vector-width steps: rows stay independent
      // (reductions keep their order within a row) and every vector has the target's width.
      unsigned loops = op.getNumLoops();
      if (loops == 0) continue;
      SmallVector<int64_t> sizes(loops, 1);
      sizes.back() = width;
      SmallVector<bool> scalable(loops, false);  // the vectorizer reads one flag per size
      scf::SCFTilingOptions options;
      options.setTileSizes(getAsIndexOpFoldResult(&getContext(), sizes));
      options.setLoopType(scf::SCFTilingOptions::LoopType::ForOp);
      rewriter.setInsertionPoint(op);
      auto tileable = dyn_cast<TilingInterface>(op.getOperation());
      FailureOr<scf::SCFTilingResult> tiled =
          tileable ? scf::tileUsingSCF(rewriter, tileable, options)
                   : FailureOr<scf::SCFTilingResult>(failure());
      if (failed(tiled)) {
        ++numScalar;
        continue;
      }
      rewriter.eraseOp(op);
      for (Operation* t : tiled->tiledOps) {
        rewriter.setInsertionPoint(t);
        FailureOr<linalg::VectorizationResult> vec = linalg::vectorize(rewriter, t, sizes, scalable);
        if (failed(vec)) {
          ++numScalar;  // left for convert-linalg-to-loops
          continue;
        }
        rewriter.eraseOp(t);
        ++numVectorized;
      }
    }
    // [1 x W] vectors -> [W]: what the LLVM lowering of transfers and reductions handles best.
    RewritePatternSet patterns(&getContext());
    vector::populateCastAwayVectorLeadingOneDimPatterns(patterns);
    vector::populateVectorTransferDropUnitDimsPatterns(patterns);
    vector::TransferReadOp::getCanonicalizationPatterns(patterns, &getContext());
    vector::TransferWriteOp::getCanonicalizationPatterns(patterns, &getContext());
    if (failed(applyPatternsGreedily(fn, std::move(patterns)))) return signalPassFailure();
  }
};

}  // namespace
}  // namespace mlir::ds

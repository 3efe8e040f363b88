// Declares ds.weight symbols for checkpoint tensors, checking presence, dtype and shape.
#pragma once

#include <optional>
#include <string>

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

namespace ds {
enum class DType : uint8_t;
class Checkpoint;
struct ModelConfig;
}  // namespace ds

namespace mlir::ds {

class WeightTable {
 public:
  WeightTable(ModuleOp module, const ::ds::Checkpoint& checkpoint, const ::ds::ModelConfig& config);

  // Declares (once) the weight `name` and checks its shape; FP8 block-scaled weights get their
  // `<name>_scale_inv` declared too. Returns the symbol to reference.
  llvm::Expected<FlatSymbolRefAttr> get(llvm::StringRef name, llvm::ArrayRef<int64_t> shape);

  // Declares `experts` tensors named by `pattern` with {e} -> 0..experts-1, all of `shape`, as
  // one stacked weight [experts, shape...] (scales stacked the same way).
  llvm::Expected<FlatSymbolRefAttr> getStacked(llvm::StringRef pattern, int64_t experts,
                                               llvm::ArrayRef<int64_t> shape);

  // True for any name when the checkpoint is synthetic (Checkpoint::synthetic): every weight
  // the config implies is declared from its shape, typed as a real checkpoint would be.
  bool has(llvm::StringRef name) const;

 private:
  ::ds::DType syntheticDType(llvm::StringRef name) const;
  llvm::Expected<FlatSymbolRefAttr> declareSynthetic(llvm::StringRef symbol, llvm::StringRef name,
                                                     llvm::ArrayRef<int64_t> shape,
                                                     std::optional<int64_t> experts);
  llvm::Expected<Type> elementType(llvm::StringRef name, int dtype) const;
  llvm::Error shapeError(llvm::StringRef name, llvm::ArrayRef<int64_t> actual,
                         llvm::ArrayRef<int64_t> expected) const;
  llvm::Expected<FlatSymbolRefAttr> declare(llvm::StringRef symbol, llvm::StringRef name,
                                            llvm::ArrayRef<int64_t> shape, Type type,
                                            std::optional<int64_t> experts,
                                            std::optional<std::string> file,
                                            FlatSymbolRefAttr scale);
  llvm::Expected<FlatSymbolRefAttr> scaleFor(llvm::StringRef name, llvm::StringRef symbol,
                                             std::optional<int64_t> experts,
                                             llvm::ArrayRef<int64_t> shape);

  ModuleOp module_;
  OpBuilder builder_;
  const ::ds::Checkpoint& checkpoint_;
  const ::ds::ModelConfig& config_;
  llvm::StringMap<FlatSymbolRefAttr> declared_;
};

}  // namespace mlir::ds

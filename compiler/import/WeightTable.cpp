// WeightTable: checkpoint tensors -> ds.weight declarations (names, dtypes, shapes, FP8 scales).
#include "compiler/import/WeightTable.h"

#include "dialects/ds/DsDialect.h"
#include "ingest/checkpoint.h"
#include "ingest/hf_config.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Path.h"

namespace mlir::ds {

namespace {

std::string shapeString(llvm::ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string expertName(llvm::StringRef pattern, int64_t e) {
  std::string name = pattern.str();
  size_t at = name.find("{e}");
  name.replace(at, 3, std::to_string(e));
  return name;
}

}  // namespace

// Synthetic weights: the type a real checkpoint of this config would have. FP8 block-quantized
// configs (DeepSeek-V3) store the projections ("*_proj.weight") in FP8 with block scales; the
// embedding, the head, norms and the router stay in torch_dtype; DeepSeek-V3's router
// correction bias is f32 in its checkpoints.
::ds::DType WeightTable::syntheticDType(llvm::StringRef name) const {
  if (config_.quantization.fp8_block && name.ends_with(".weight") && name.contains("_proj"))
    return ::ds::DType::kF8_E4M3;
  if (name.ends_with("e_score_correction_bias")) return ::ds::DType::kF32;
  if (config_.torch_dtype == "bfloat16") return ::ds::DType::kBF16;
  if (config_.torch_dtype == "float16") return ::ds::DType::kF16;
  return ::ds::DType::kF32;
}

WeightTable::WeightTable(ModuleOp module, const ::ds::Checkpoint& checkpoint,
                         const ::ds::ModelConfig& config)
    : module_(module), builder_(module.getContext()), checkpoint_(checkpoint), config_(config) {
  builder_.setInsertionPointToEnd(module.getBody());
}

bool WeightTable::has(llvm::StringRef name) const {
  return checkpoint_.isSynthetic() || checkpoint_.find(name) != nullptr;
}

llvm::Error WeightTable::shapeError(llvm::StringRef name, llvm::ArrayRef<int64_t> actual,
                                    llvm::ArrayRef<int64_t> expected) const {
  return llvm::createStringError(
      "%s: tensor '%s' has shape %s, but %s implies %s", checkpoint_.source().c_str(),
      name.str().c_str(), shapeString(actual).c_str(), config_.source.c_str(),
      shapeString(expected).c_str());
}

llvm::Expected<Type> WeightTable::elementType(llvm::StringRef name, int dtype) const {
  MLIRContext* ctx = builder_.getContext();
  switch (static_cast<::ds::DType>(dtype)) {
    case ::ds::DType::kF32: return Float32Type::get(ctx);
    case ::ds::DType::kF16: return Float16Type::get(ctx);
    case ::ds::DType::kBF16: return BFloat16Type::get(ctx);
    case ::ds::DType::kF8_E4M3: return Float8E4M3FNType::get(ctx);
    default: break;
  }
  // Every weight a model reads is a float (integer codes are made by --quant, not imported):
  // an integer tensor would be stored as is and read as floats by the kernels.
  if (!::ds::isFloatingPoint(static_cast<::ds::DType>(dtype)))
    return llvm::createStringError(
        "%s: tensor '%s' has dtype %s, but a float weight (F32, F16, BF16, F8_E4M3) is expected",
        checkpoint_.source().c_str(), name.str().c_str(),
        ::ds::dtypeName(static_cast<::ds::DType>(dtype)));
  return llvm::createStringError("%s: tensor '%s' has dtype %s, which no weight kernel reads",
                                 checkpoint_.source().c_str(), name.str().c_str(),
                                 ::ds::dtypeName(static_cast<::ds::DType>(dtype)));
}

llvm::Expected<FlatSymbolRefAttr> WeightTable::declare(
    llvm::StringRef symbol, llvm::StringRef name, llvm::ArrayRef<int64_t> shape, Type type,
    std::optional<int64_t> experts, std::optional<std::string> file, FlatSymbolRefAttr scale) {
  auto tensorType = RankedTensorType::get(shape, type);
  auto op = WeightOp::create(builder_, builder_.getUnknownLoc(), symbol, tensorType, name,
                             file ? builder_.getStringAttr(*file) : StringAttr(),
                             experts ? builder_.getI64IntegerAttr(*experts) : IntegerAttr(),
                             scale, DenseI64ArrayAttr(), StringAttr(), /*shard=*/DenseI64ArrayAttr(),
                             /*concat=*/ArrayAttr());
  if (scale) {
    op.setBlockAttr(builder_.getDenseI64ArrayAttr(
        {config_.quantization.block_rows, config_.quantization.block_cols}));
  }
  auto ref = FlatSymbolRefAttr::get(op.getSymNameAttr());
  declared_[symbol] = ref;
  return ref;
}

llvm::Expected<FlatSymbolRefAttr> WeightTable::scaleFor(llvm::StringRef name,
                                                        llvm::StringRef symbol,
                                                        std::optional<int64_t> experts,
                                                        llvm::ArrayRef<int64_t> shape) {
  const auto& q = config_.quantization;
  if (shape.size() < 2) return llvm::createStringError("FP8 weight '%s' is not a matrix", name.str().c_str());
  int64_t rows = shape[shape.size() - 2], cols = shape.back();
  llvm::SmallVector<int64_t> scaleShape{(rows + q.block_rows - 1) / q.block_rows,
                                        (cols + q.block_cols - 1) / q.block_cols};
  std::string scaleName = name.str() + "_scale_inv";
  std::string scaleSymbol = symbol.str() + "_scale_inv";
  if (auto it = declared_.find(scaleSymbol); it != declared_.end()) return it->second;
  std::optional<std::string> file;
  if (checkpoint_.isSynthetic()) {
    if (experts) scaleShape.insert(scaleShape.begin(), *experts);
  } else if (experts) {
    for (int64_t e = 0; e < *experts; ++e) {
      std::string n = expertName(scaleName, e);
      const ::ds::TensorView* t = checkpoint_.find(n);
      if (!t)
        return llvm::createStringError("%s: FP8 weight needs its scale tensor '%s', which is missing",
                                       checkpoint_.source().c_str(), n.c_str());
      if (llvm::ArrayRef<int64_t>(t->shape) != llvm::ArrayRef<int64_t>(scaleShape))
        return shapeError(n, t->shape, scaleShape);
    }
    scaleShape.insert(scaleShape.begin(), *experts);
  } else {
    const ::ds::TensorView* t = checkpoint_.find(scaleName);
    if (!t)
      return llvm::createStringError("%s: FP8 weight needs its scale tensor '%s', which is missing",
                                     checkpoint_.source().c_str(), scaleName.c_str());
    if (llvm::ArrayRef<int64_t>(t->shape) != llvm::ArrayRef<int64_t>(scaleShape))
      return shapeError(scaleName, t->shape, scaleShape);
    if (t->dtype != ::ds::DType::kF32)
      return llvm::createStringError("%s: scale tensor '%s' must be F32, got %s",
                                     checkpoint_.source().c_str(), scaleName.c_str(),
                                     ::ds::dtypeName(t->dtype));
    file = llvm::sys::path::filename(t->file->path()).str();
  }
  return declare(scaleSymbol, scaleName, scaleShape, builder_.getF32Type(),
                 experts, file, FlatSymbolRefAttr());
}

llvm::Expected<FlatSymbolRefAttr> WeightTable::get(llvm::StringRef name,
                                                   llvm::ArrayRef<int64_t> shape) {
  if (auto it = declared_.find(name); it != declared_.end()) return it->second;
  if (checkpoint_.isSynthetic()) return declareSynthetic(name, name, shape, std::nullopt);
  const ::ds::TensorView* t = checkpoint_.find(name);
  if (!t)
    return llvm::createStringError("%s: tensor '%s' is missing (%s implies it)",
                                   checkpoint_.source().c_str(), name.str().c_str(),
                                   config_.source.c_str());
  if (llvm::ArrayRef<int64_t>(t->shape) != shape) return shapeError(name, t->shape, shape);
  llvm::Expected<Type> type = elementType(name, static_cast<int>(t->dtype));
  if (!type) return type.takeError();
  FlatSymbolRefAttr scale;
  if (t->dtype == ::ds::DType::kF8_E4M3) {
    if (!config_.quantization.fp8_block)
      return llvm::createStringError(
          "%s: tensor '%s' is F8_E4M3 but %s has no fp8 quantization_config",
          checkpoint_.source().c_str(), name.str().c_str(), config_.source.c_str());
    llvm::Expected<FlatSymbolRefAttr> s = scaleFor(name, name, std::nullopt, shape);
    if (!s) return s.takeError();
    scale = *s;
  }
  return declare(name, name, shape, *type, std::nullopt,
                 llvm::sys::path::filename(t->file->path()).str(), scale);
}

llvm::Expected<FlatSymbolRefAttr> WeightTable::getStacked(llvm::StringRef pattern,
                                                          int64_t experts,
                                                          llvm::ArrayRef<int64_t> shape) {
  std::string symbol = pattern.str();
  symbol.replace(symbol.find(".{e}"), 4, "");
  if (auto it = declared_.find(symbol); it != declared_.end()) return it->second;
  if (checkpoint_.isSynthetic()) return declareSynthetic(symbol, pattern, shape, experts);
  std::optional<::ds::DType> dtype;
  for (int64_t e = 0; e < experts; ++e) {
    std::string n = expertName(pattern, e);
    const ::ds::TensorView* t = checkpoint_.find(n);
    if (!t)
      return llvm::createStringError("%s: tensor '%s' is missing (%s declares %lld experts)",
                                     checkpoint_.source().c_str(), n.c_str(),
                                     config_.source.c_str(), static_cast<long long>(experts));
    if (llvm::ArrayRef<int64_t>(t->shape) != shape) return shapeError(n, t->shape, shape);
    if (dtype && *dtype != t->dtype)
      return llvm::createStringError("%s: expert tensor '%s' is %s but expert 0 is %s",
                                     checkpoint_.source().c_str(), n.c_str(),
                                     ::ds::dtypeName(t->dtype), ::ds::dtypeName(*dtype));
    dtype = t->dtype;
  }
  llvm::Expected<Type> type = elementType(pattern, static_cast<int>(*dtype));
  if (!type) return type.takeError();
  FlatSymbolRefAttr scale;
  if (*dtype == ::ds::DType::kF8_E4M3) {
    if (!config_.quantization.fp8_block)
      return llvm::createStringError(
          "%s: tensors '%s' are F8_E4M3 but %s has no fp8 quantization_config",
          checkpoint_.source().c_str(), pattern.str().c_str(), config_.source.c_str());
    llvm::Expected<FlatSymbolRefAttr> s = scaleFor(pattern, symbol, experts, shape);
    if (!s) return s.takeError();
    scale = *s;
  }
  llvm::SmallVector<int64_t> stacked{experts};
  stacked.append(shape.begin(), shape.end());
  return declare(symbol, pattern, stacked, *type, experts, std::nullopt, scale);
}

llvm::Expected<FlatSymbolRefAttr> WeightTable::declareSynthetic(llvm::StringRef symbol,
                                                                llvm::StringRef name,
                                                                llvm::ArrayRef<int64_t> shape,
                                                                std::optional<int64_t> experts) {
  ::ds::DType dtype = syntheticDType(name);
  llvm::Expected<Type> type = elementType(name, static_cast<int>(dtype));
  if (!type) return type.takeError();
  FlatSymbolRefAttr scale;
  if (dtype == ::ds::DType::kF8_E4M3) {
    llvm::Expected<FlatSymbolRefAttr> s = scaleFor(name, symbol, experts, shape);
    if (!s) return s.takeError();
    scale = *s;
  }
  llvm::SmallVector<int64_t> full;
  if (experts) full.push_back(*experts);
  full.append(shape.begin(), shape.end());
  return declare(symbol, name, full, *type, experts, std::nullopt, scale);
}

}  // namespace mlir::ds

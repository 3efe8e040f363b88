// buildSyntheticTable: ds.weight symbols -> synthetic tensor entries (shapes, dtypes, fills).
#include "compiler/artifact/SyntheticWeights.h"

#include "artifact/artifact_info.h"
#include "artifact/synthetic.h"
#include "compiler/artifact/PlanBuilder.h"
#include "dialects/ds/DsDialect.h"

namespace mlir::ds {

namespace fb = ::ds::fb;

namespace {

uint64_t elements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

std::string sourceOf(WeightOp op) {
  std::optional<ArrayAttr> concat = op.getConcat();
  if (!concat) return op.getName().str();
  std::string s;
  for (Attribute a : *concat) s += (s.empty() ? "" : " + ") + cast<StringAttr>(a).str();
  return s;
}

TensorRecord syntheticRecord(std::string name, std::string source, fb::DType dtype,
                             std::vector<int64_t> shape, int64_t experts, bool isScale) {
  TensorRecord r;
  r.name = std::move(name);
  r.source = std::move(source);
  r.dtype = dtype;
  r.shape = std::move(shape);
  r.segment = ::ds::artifact::kNoSegment;
  r.nbytes = elements(r.shape) * ::ds::artifact::dtypeSize(dtype);
  r.experts = experts;
  r.synthetic = true;
  syntheticFillFor(r.source, dtype, isScale, &r.synthetic_mean, &r.synthetic_std);
  return r;
}

}  // namespace

void syntheticFillFor(llvm::StringRef name, fb::DType stored, bool isScale, float* mean,
                      float* std) {
  *mean = 0.0f;
  *std = 0.02f;
  if (isScale) {  // FP8 block scales: codes ~ N(0, 1) times 0.02
    *mean = 0.02f;
    *std = 0.0f;
  } else if (stored == fb::DType_F8_E4M3) {
    *std = 1.0f;
  } else if (name.contains("norm")) {  // input_layernorm, q_a_layernorm, model.norm, ...
    *mean = 1.0f;
    *std = 0.0f;
  } else if (name.ends_with("bias")) {  // q/k/v biases, e_score_correction_bias
    *std = 0.01f;
  }
}

bool isVectorWeight(WeightOp op) { return op.getFullShape().size() == 1; }

fb::DType storedWeightType(WeightOp op, fb::DType declared, fb::DType floatStorage, bool f32Vectors) {
  const bool isScale = op.getName().ends_with("_scale_inv");
  const bool isFloat = declared == fb::DType_F32 || declared == fb::DType_F16 ||
                       declared == fb::DType_BF16;
  if (!isFloat || isScale) return declared;
  if (f32Vectors && isVectorWeight(op)) return fb::DType_F32;
  return floatStorage;
}

llvm::Expected<SyntheticTable> buildSyntheticTable(ModuleOp module, fb::DType floatStorage,
                                                  bool f32Vectors) {
  auto tpAttr = module->getAttrOfType<IntegerAttr>("ds.tp");
  const int64_t tp = tpAttr ? tpAttr.getInt() : 1;
  SyntheticTable table;
  std::vector<WeightOp> ops;
  for (WeightOp op : module.getOps<WeightOp>()) {
    if (op.getQuant())
      return llvm::createStringError(
          "weight @%s is quantized (--quant): synthetic weights (--weights random) are filled in "
          "the float or FP8 type of the checkpoint; compile without --quant",
          op.getSymName().str().c_str());
    table.index[op.getSymName()] = static_cast<int>(ops.size());
    ops.push_back(op);
  }
  table.records.resize(ops.size());
  std::vector<TensorRecord> extras;  // other ranks' shards and per-part block scales
  auto addExtra = [&](TensorRecord r) {
    extras.push_back(std::move(r));
    return static_cast<int>(ops.size() + extras.size() - 1);
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    WeightOp op = ops[i];
    llvm::Expected<fb::DType> declared = fbDType(op.getTensorType().getElementType());
    if (!declared) return declared.takeError();
    const bool isScale = llvm::StringRef(op.getName()).ends_with("_scale_inv");
    const fb::DType stored = storedWeightType(op, *declared, floatStorage, f32Vectors);
    auto local = op.getTensorType().getShape();
    const int64_t experts = op.getExperts().value_or(0);
    TensorRecord r = syntheticRecord(op.getSymName().str(), sourceOf(op), stored,
                                     std::vector<int64_t>(local.begin(), local.end()), experts,
                                     isScale);
    r.synthetic_stream = i;
    std::vector<int64_t> block;
    if (FlatSymbolRefAttr s = op.getScaleAttr()) {
      r.scale = table.index.lookup(s.getValue());
      r.block.assign(op.getBlock()->begin(), op.getBlock()->end());
    }
    // Parameters: every weight but FP8 block scales (block-scaled weights themselves count).
    if (!isScale)
      table.parameters += elements(r.shape) * (tp > 1 && op.getShard() ? (*op.getShard())[1] : 1);
    std::optional<ArrayRef<int64_t>> cut = op.getShard();
    if (!cut) {
      table.weight_bytes += r.nbytes;
      table.records[i] = std::move(r);
      continue;
    }
    // One entry per rank; ranks holding the same part (pieces < tp) share the first one's stream.
    const int64_t pieces = (*cut)[1];
    std::vector<int> rankIndex(static_cast<size_t>(tp));
    std::vector<int64_t> partStream(static_cast<size_t>(pieces), -1);
    for (int64_t rank = 0; rank < tp; ++rank) {
      const int64_t part = rank / (tp / pieces);
      TensorRecord shard = r;
      shard.tp_rank = static_cast<int>(rank);
      if (r.scale >= 0) {  // block scales of the part, on the original block grid
        const size_t n = shard.shape.size();
        std::vector<int64_t> scaleShape;
        if (experts) scaleShape.push_back(experts);
        scaleShape.push_back((shard.shape[n - 2] + r.block[0] - 1) / r.block[0]);
        scaleShape.push_back((shard.shape[n - 1] + r.block[1] - 1) / r.block[1]);
        std::string name = r.name + ".block_scale.part" + std::to_string(part);
        TensorRecord s = syntheticRecord(name, name, fb::DType_F32, scaleShape, experts, true);
        shard.scale = addExtra(std::move(s));
        extras[shard.scale - ops.size()].synthetic_stream = static_cast<uint64_t>(shard.scale);
      }
      int index = rank == 0 ? static_cast<int>(i) : -1;
      if (rank > 0) index = addExtra(shard);
      if (partStream[part] < 0) {
        partStream[part] = index;
        table.weight_bytes += shard.nbytes;
      }
      TensorRecord& placed = rank == 0 ? r : extras[index - ops.size()];
      if (rank == 0) r.scale = shard.scale, r.tp_rank = 0;
      placed.synthetic_stream = static_cast<uint64_t>(partStream[part]);
      rankIndex[rank] = index;
    }
    for (int idx : rankIndex) r.shards.push_back(static_cast<uint32_t>(idx));
    table.records[i] = std::move(r);
  }
  for (TensorRecord& x : extras) table.records.push_back(std::move(x));
  return table;
}

}  // namespace mlir::ds

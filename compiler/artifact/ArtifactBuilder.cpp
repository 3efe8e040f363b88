// writeArtifact: weights streamed from the checkpoint mmap into segments, then the metadata.
#include "compiler/artifact/ArtifactBuilder.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <thread>

#include "artifact/artifact_info.h"
#include "artifact/artifact_writer.h"
#include "artifact/format.h"
#include "compiler/artifact/PlanBuilder.h"
#include "compiler/artifact/SyntheticWeights.h"
#include "compiler/artifact/TokenizerFiles.h"
#include "compiler/artifact/WeightQuantizer.h"
#include "compiler/quant/Calibration.h"
#include "compiler/target/TargetInfo.h"
#include "abi/launch_abi.h"
#include "compiler/artifact/WeightShards.h"
#include "dialects/ds/DsDialect.h"
#include "ds/status.h"
#include "ingest/checkpoint.h"
#include "format/dtype.h"
#include "ingest/hf_config.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::ds {

namespace fb = ::ds::fb;

namespace {

// Bytes per stored element (I4: 1, quantized weights size their codes themselves).
using ::ds::artifact::dtypeSize;

// One weight as stored: its checkpoint parts (one, or one per expert) and its storage type.
struct WeightPlan {
  WeightOp op;
  std::vector<const ::ds::TensorView*> parts;
  fb::DType stored;
  uint64_t numel = 0;
  std::optional<QuantEncoding> quant;
};

// Rows x cols of one expert (a vector is 1 x n).
std::pair<int64_t, int64_t> matrixShape(WeightOp op) {
  auto shape = op.getTensorType().getShape();
  if (shape.size() == 1) return {1, shape[0]};
  return {shape[shape.size() - 2], shape.back()};
}

// "<file>: tensor '<name>'" for weight errors.
std::string tensorWhere(const ::ds::TensorView& part) {
  return part.file->path() + ": tensor '" + std::string(part.name) + "'";
}

// Weights must be finite: one NaN or infinity silently poisons every token that touches it. The
// elements are read here anyway, so the check costs one compare each. `first` is the index of
// src[0] within the tensor.
::ds::Status checkFinite(const ::ds::TensorView& part, const uint8_t* src, uint64_t n,
                         uint64_t first) {
  auto bad = [&](uint64_t i, const char* what) {
    return ::ds::invalidArgument(tensorWhere(part) + ": element " + std::to_string(first + i) +
                                 " is " + what + " (weights must be finite)");
  };
  switch (part.dtype) {
    case ::ds::DType::kF32:
      for (uint64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, src + 4 * i, 4);
        if (!std::isfinite(v)) return bad(i, std::isnan(v) ? "NaN" : "infinite");
      }
      break;
    case ::ds::DType::kF16:
    case ::ds::DType::kBF16: {
      // All-ones exponent: infinity (zero mantissa) or NaN.
      const uint16_t exponent = part.dtype == ::ds::DType::kF16 ? 0x7c00 : 0x7f80;
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t bits;
        std::memcpy(&bits, src + 2 * i, 2);
        if ((bits & exponent) == exponent)
          return bad(i, (bits & 0x7fff) == exponent ? "infinite" : "NaN");
      }
      break;
    }
    case ::ds::DType::kF8_E4M3:  // e4m3fn: no infinity, S.1111.111 is NaN
      for (uint64_t i = 0; i < n; ++i)
        if ((src[i] & 0x7f) == 0x7f) return bad(i, "NaN");
      break;
    case ::ds::DType::kF8_E5M2:
      for (uint64_t i = 0; i < n; ++i)
        if ((src[i] & 0x7c) == 0x7c) return bad(i, (src[i] & 0x7f) == 0x7c ? "infinite" : "NaN");
      break;
    default:
      break;
  }
  return ::ds::Status::ok();
}

// Converts elements [begin, begin + count) of the concatenated parts into `dst`.
::ds::Status fillElements(const WeightPlan& w, uint64_t begin, uint64_t count, uint8_t* dst,
                          std::vector<float>& scratch) {
  size_t outSize = dtypeSize(w.stored);
  while (count > 0) {
    // Parts may differ in size (concatenated q/k/v); experts are all the same size.
    size_t index = 0;
    uint64_t inPart = begin;
    while (inPart >= w.parts[index]->numel()) inPart -= w.parts[index++]->numel();
    const ::ds::TensorView* part = w.parts[index];
    uint64_t n = std::min(count, part->numel() - inPart);
    size_t inSize = ::ds::dtypeSize(part->dtype);
    const uint8_t* src = part->data + inPart * inSize;
    bool same = (part->dtype == ::ds::DType::kF32 && w.stored == fb::DType_F32) ||
                (part->dtype == ::ds::DType::kF16 && w.stored == fb::DType_F16) ||
                (part->dtype == ::ds::DType::kBF16 && w.stored == fb::DType_BF16) ||
                (part->dtype == ::ds::DType::kF8_E4M3 && w.stored == fb::DType_F8_E4M3) ||
                (part->dtype == ::ds::DType::kI8 && w.stored == fb::DType_I8) ||
                (part->dtype == ::ds::DType::kI32 && w.stored == fb::DType_I32);
    if (::ds::Status st = checkFinite(*part, src, n, inPart); !st.isOk()) return st;
    if (same) {
      std::memcpy(dst, src, n * inSize);
    } else {
      if (!::ds::isFloatingPoint(part->dtype))
        return ::ds::invalidArgument(tensorWhere(*part) + " is " + ::ds::dtypeName(part->dtype) +
                                     ", but a float weight (F32, F16, BF16, F8_E4M3) is expected");
      // f32 out (what the quantizer reads): converted in place, no scratch copy.
      float* out = w.stored == fb::DType_F32 ? reinterpret_cast<float*>(dst) : nullptr;
      if (!out) scratch.resize(n);
      ::ds::Status st = ::ds::convertToFloat(part->dtype, src, out ? out : scratch.data(), n);
      if (!st.isOk()) return ::ds::Status(st.code(), tensorWhere(*part) + ": " + st.message());
      const bool bf16 = w.stored == fb::DType_BF16;
      for (uint64_t i = 0; !out && i < n; ++i) {
        const uint16_t bits = bf16 ? ::ds::floatToBF16(scratch[i]) : ::ds::floatToHalf(scratch[i]);
        // The source is finite (checked above): an infinity here is a conversion overflow.
        if ((bits & 0x7fff) == (bf16 ? 0x7f80 : 0x7c00))
          return ::ds::invalidArgument(
              tensorWhere(*part) + ": element " + std::to_string(inPart + i) + " (" +
              std::to_string(scratch[i]) + ") overflows " + (bf16 ? "bf16" : "f16") +
              " (--dtype " + (bf16 ? "bf16" : "f16") + "); --dtype f32 keeps it");
        std::memcpy(dst + i * 2, &bits, 2);
      }
    }
    dst += n * outSize;
    begin += n;
    count -= n;
  }
  return ::ds::Status::ok();
}

class Progress {
 public:
  Progress(bool enabled, uint64_t total) : enabled_(enabled && isatty(2)), total_(total) {}
  void advance(uint64_t bytes) {
    done_ += bytes;
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (done_ < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    int width = 40, filled = total_ ? static_cast<int>(width * done_ / total_) : width;
    llvm::errs() << "\r[" << std::string(filled, '#') << std::string(width - filled, ' ')
                 << "] " << done_ / (1 << 20) << "/" << total_ / (1 << 20) << " MiB";
    if (done_ >= total_) llvm::errs() << "\n";
  }

 private:
  bool enabled_;
  uint64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

// The checkpoint tensor(s) a weight comes from: "a + b + c" for a merged projection.
std::string sourceName(WeightOp op) {
  std::optional<ArrayAttr> concat = op.getConcat();
  if (!concat) return op.getName().str();
  std::string s;
  for (Attribute a : *concat) s += (s.empty() ? "" : " + ") + cast<StringAttr>(a).str();
  return s;
}

flatbuffers::Offset<fb::Tensor> createTensor(flatbuffers::FlatBufferBuilder& fbb,
                                             const TensorRecord& r) {
  return fb::CreateTensorDirect(fbb, r.name.c_str(), r.source.c_str(), r.dtype, &r.shape,
                                r.segment, r.nbytes, r.scale, r.block.empty() ? nullptr : &r.block,
                                r.experts, r.tp_rank, r.quant, r.group_size, r.qscale, r.qzero,
                                r.shards.empty() ? nullptr : &r.shards,
                                r.synthetic ? fb::CreateSyntheticFill(fbb, r.synthetic_mean,
                                                                      r.synthetic_std,
                                                                      r.synthetic_stream)
                                            : 0);
}

}  // namespace

llvm::Expected<ArtifactStats> writeArtifact(ModuleOp module, const ::ds::ModelConfig& config,
                                            const ::ds::Checkpoint& checkpoint,
                                            const ArtifactOptions& options) {
  fb::DType floatStorage;
  if (options.weight_dtype == "f32") floatStorage = fb::DType_F32;
  else if (options.weight_dtype == "bf16") floatStorage = fb::DType_BF16;
  else if (options.weight_dtype == "f16") floatStorage = fb::DType_F16;
  else
    return llvm::createStringError("unsupported --dtype '%s' (f32, bf16, f16)",
                                   options.weight_dtype.c_str());

  // Synthetic weights: specs and fills only; no weight is read or written (the loops over
  // `plans` below have nothing to do).
  const bool synthetic = checkpoint.isSynthetic();
  std::optional<SyntheticTable> syntheticTable;
  if (synthetic) {
    auto table = buildSyntheticTable(module, floatStorage, options.f32_vectors);
    if (!table) return table.takeError();
    syntheticTable = std::move(*table);
  }
  // Resolve every weight to its checkpoint parts before writing anything.
  std::vector<WeightPlan> plans;
  llvm::StringMap<int> tensorIndex;
  if (synthetic)
    for (const auto& entry : syntheticTable->index) tensorIndex[entry.getKey()] = entry.getValue();
  uint64_t total = 0;
  for (WeightOp op : module.getOps<WeightOp>()) {
    if (synthetic) break;
    WeightPlan w{op, {}, fb::DType_F32, 0};
    std::string name = op.getName().str();
    // The checkpoint's experts: an expert-parallel weight declares its rank-local count.
    int64_t experts = op.getExperts() ? op.getFullShape()[0] : 0;
    // Parts: one tensor, one per expert, or the stacked tensors of a merged projection.
    std::vector<std::string> partNames;
    if (std::optional<ArrayAttr> concat = op.getConcat()) {
      for (Attribute a : *concat) partNames.push_back(cast<StringAttr>(a).str());
    } else {
      for (int64_t e = 0; e < std::max<int64_t>(experts, 1); ++e) {
        std::string part = name;
        if (experts) part.replace(part.find("{e}"), 3, std::to_string(e));
        partNames.push_back(part);
      }
    }
    for (const std::string& part : partNames) {
      const ::ds::TensorView* t = checkpoint.find(part);
      if (!t) return llvm::createStringError("%s: tensor '%s' is missing", checkpoint.source().c_str(), part.c_str());
      w.parts.push_back(t);
      w.numel += t->numel();
    }
    uint64_t declaredNumel = 1;
    for (int64_t d : op.getFullShape()) declaredNumel *= static_cast<uint64_t>(d);
    if (declaredNumel != w.numel)
      return llvm::createStringError("%s: tensor '%s' has %llu elements, the IR declares %llu",
                                     checkpoint.source().c_str(), name.c_str(),
                                     static_cast<unsigned long long>(w.numel),
                                     static_cast<unsigned long long>(declaredNumel));
    llvm::Expected<fb::DType> declared = fbDType(op.getTensorType().getElementType());
    if (!declared) return declared.takeError();
    // Block scales stay f32: they are part of the FP8 encoding, not a weight to convert.
    w.stored = storedWeightType(op, *declared, floatStorage, options.f32_vectors);
    if (std::optional<llvm::StringRef> q = op.getQuant()) {
      w.quant = parseQuantScheme(q->str());
      if (!w.quant)
        return llvm::createStringError("weight @%s: unknown quantization '%s'",
                                       op.getSymName().str().c_str(), q->str().c_str());
    }
    tensorIndex[op.getSymName()] = static_cast<int>(plans.size());
    total += w.numel * dtypeSize(w.stored);
    plans.push_back(std::move(w));
  }

  auto writerOr = ::ds::artifact::ArtifactWriter::create(options.output_path);
  if (!writerOr.isOk()) return llvm::createStringError(writerOr.status().message());
  std::unique_ptr<::ds::artifact::ArtifactWriter> writer = std::move(writerOr.value());
  if (options.signing_key) writer->signWith(*options.signing_key);
  Progress progress(options.progress, total);
  std::vector<uint32_t> segmentOf;
  std::vector<float> scratch;
  // f32 copies of the weights being quantized, one buffer for all of them: a fresh vector per
  // weight cost the kernel's page zeroing plus our own (15% of a 1.5B w4g128 build).
  std::unique_ptr<float[]> f32;
  uint64_t f32_size = 0;
  QuantizedWeight q;  // reused for the same reason (assign keeps its capacity)
  // Quantized weights: their codes replace the weight's segment; scales and zero points become
  // extra tensors appended after the declared ones.
  struct QuantOut {
    fb::QuantKind kind = fb::QuantKind_None;
    fb::DType dtype = fb::DType_F32;
    int64_t group_size = 0;
    uint64_t nbytes = 0;
    int scale = -1, zero = -1;
  };
  std::vector<QuantOut> quantOut(plans.size());
  struct ExtraTensor {
    std::string name;
    std::vector<int64_t> shape;
    uint32_t segment;
    uint64_t nbytes;
  };
  std::vector<ExtraTensor> extras;
  // Tensor parallelism: rank 0's record of every sharded weight (by plan index), and the
  // records of the other ranks' shards and of per-part scales, appended after `extras`.
  auto tpAttr = module->getAttrOfType<IntegerAttr>("ds.tp");
  int64_t tp = tpAttr ? tpAttr.getInt() : 1;
  std::map<size_t, TensorRecord> shardPrimary;
  std::vector<TensorRecord> shardExtras;
  // Indices into shardExtras until every extra is known; rebased before the table is written.
  auto addShardTensor = [&](TensorRecord r) {
    shardExtras.push_back(std::move(r));
    return static_cast<int>(shardExtras.size() - 1);
  };
  // One segment per weight, in declaration order: streamed (and converted) from the checkpoint,
  // or, for quantized weights, the codes followed by their scale/zero-point segments.
  for (size_t i = 0; i < plans.size(); ++i) {
    WeightPlan& w = plans[i];
    size_t esize = dtypeSize(w.stored);
    if (std::optional<ArrayRef<int64_t>> cut = w.op.getShard()) {
      // The whole tensor in memory (one weight at a time), then each distinct part.
      WeightPlan whole = w;
      if (w.quant) whole.stored = fb::DType_F32;
      std::vector<uint8_t> full(w.numel * dtypeSize(whole.stored));
      ::ds::Status st = fillElements(whole, 0, w.numel, full.data(), scratch);
      if (!st.isOk()) return llvm::createStringError(st.message());
      ShardedWeight sw;
      sw.symbol = w.op.getSymName().str();
      sw.source = w.op.getName().str();
      llvm::SmallVector<int64_t> fullShape = w.op.getFullShape();
      sw.fullShape.assign(fullShape.begin(), fullShape.end());
      sw.experts = w.op.getExperts() ? sw.fullShape[0] : 0;
      sw.dim = (*cut)[0];
      sw.pieces = (*cut)[1];
      sw.tp = tp;
      sw.stored = whole.stored;
      sw.quant = w.quant;
      sw.full = full.data();
      if (options.calibration)
        sw.hessian = options.calibration->find(sw.source, sw.fullShape.back());
      std::vector<uint8_t> scaleData;
      if (FlatSymbolRefAttr s = w.op.getScaleAttr()) {
        const WeightPlan& sp = plans[tensorIndex.lookup(s.getValue())];
        WeightPlan sf = sp;
        sf.stored = fb::DType_F32;
        scaleData.resize(sp.numel * sizeof(float));
        st = fillElements(sf, 0, sp.numel, scaleData.data(), scratch);
        if (!st.isOk()) return llvm::createStringError(st.message());
        sw.blockScale = reinterpret_cast<const float*>(scaleData.data());
        sw.block.assign(w.op.getBlock()->begin(), w.op.getBlock()->end());
      }
      auto rec = writeShards(sw, *writer, static_cast<int>(i), addShardTensor);
      if (!rec) return rec.takeError();
      progress.advance(w.numel * esize);
      segmentOf.push_back(rec->segment);
      shardPrimary[i] = std::move(*rec);
      continue;
    }
    if (!w.quant) {
      auto seg = writer->addSegment(w.numel * esize, [&](uint8_t* dst, uint64_t offset, uint64_t size) {
        ::ds::Status st = fillElements(w, offset / esize, size / esize, dst, scratch);
        progress.advance(size);
        return st;
      });
      if (!seg.isOk()) return llvm::createStringError(seg.status().message());
      segmentOf.push_back(*seg);
      continue;
    }
    if (f32_size < w.numel) {
      f32.reset(new float[w.numel]);  // filled completely below
      f32_size = w.numel;
    }
    WeightPlan asF32 = w;
    asF32.stored = fb::DType_F32;
    // The conversion runs on two threads (half each): it was the largest serial part of a
    // quantized build after the search.
    const uint64_t half = w.numel / 2;
    std::vector<float> scratch2;
    ::ds::Status st2 = ::ds::Status::ok();
    std::thread second([&] {
      st2 = fillElements(asF32, half, w.numel - half, reinterpret_cast<uint8_t*>(f32.get() + half), scratch2);
    });
    ::ds::Status st = fillElements(asF32, 0, half, reinterpret_cast<uint8_t*>(f32.get()), scratch);
    second.join();
    if (st.isOk()) st = st2;
    if (!st.isOk()) return llvm::createStringError(st.message());
    auto [rows, cols] = matrixShape(w.op);
    int64_t experts = w.op.getExperts().value_or(1);
    q.zeros.clear();  // only asymmetric schemes assign them
    const double* hessian =
        options.calibration ? options.calibration->find(w.op.getName().str(), cols) : nullptr;
    if (!quantizeWeight(*w.quant, f32.get(), experts, rows, cols, &q, hessian))
      return llvm::createStringError("quantizing @%s failed", w.op.getSymName().str().c_str());
    progress.advance(w.numel * esize);
    auto seg = writer->addSegmentFromMemory(q.codes.data(), q.codes.size());
    if (!seg.isOk()) return llvm::createStringError(seg.status().message());
    segmentOf.push_back(*seg);
    QuantOut& o = quantOut[i];
    o.kind = w.quant->kind;
    o.dtype = w.quant->dtype;
    o.group_size = w.quant->group_size;
    o.nbytes = q.codes.size();
    int64_t groups = static_cast<int64_t>(q.scales.size()) / (experts * rows);
    std::vector<int64_t> scaleShape{experts * rows, groups};
    auto addExtra = [&](const std::string& suffix, const std::vector<float>& v) -> llvm::Expected<int> {
      auto s = writer->addSegmentFromMemory(v.data(), v.size() * sizeof(float));
      if (!s.isOk()) return llvm::createStringError(s.status().message());
      extras.push_back({w.op.getSymName().str() + suffix, scaleShape, *s, v.size() * sizeof(float)});
      return static_cast<int>(plans.size() + extras.size() - 1);
    };
    auto sc = addExtra(".qscale", q.scales);
    if (!sc) return sc.takeError();
    o.scale = *sc;
    if (!q.zeros.empty()) {
      auto z = addExtra(".qzero", q.zeros);
      if (!z) return z.takeError();
      o.zero = *z;
    }
  }

  int shardBase = static_cast<int>(plans.size() + extras.size());
  auto rebase = [&](TensorRecord& r, bool primary) {
    for (int* idx : {&r.scale, &r.qscale, &r.qzero})
      if (*idx >= 0) *idx += shardBase;
    for (size_t k = primary ? 1 : 0; k < r.shards.size(); ++k) r.shards[k] += shardBase;
  };
  for (auto& [i, r] : shardPrimary) rebase(r, true);
  for (TensorRecord& r : shardExtras) rebase(r, false);

  // What the weights take as stored: quantized codes with their scales, every rank's shards.
  uint64_t storedWeightBytes = synthetic ? syntheticTable->weight_bytes : 0;
  for (const auto& segment : writer->segments()) storedWeightBytes += segment.size;

  // Generated kernels: the shared object is one more checksummed segment, after the weights.
  if (findKernelModule(module) && !options.code)
    return llvm::createStringError("the module has generated kernels but no compiled code object");
  uint32_t codeSegment = 0;
  if (options.code) {
    auto seg = writer->addSegmentFromMemory(options.code->bytes.data(), options.code->bytes.size());
    if (!seg.isOk()) return llvm::createStringError(seg.status().message());
    codeSegment = *seg;
  }
  std::vector<uint32_t> extraSegments;
  std::vector<const CodeObject*> extraObjects(options.extra_code);
  extraObjects.insert(extraObjects.end(), options.library_code.begin(), options.library_code.end());
  for (const CodeObject* extra : extraObjects) {
    auto seg = writer->addSegmentFromMemory(extra->bytes.data(), extra->bytes.size());
    if (!seg.isOk()) return llvm::createStringError(seg.status().message());
    extraSegments.push_back(*seg);
  }

  flatbuffers::FlatBufferBuilder fbb(1 << 16);
  std::vector<flatbuffers::Offset<fb::Tensor>> tensors;
  uint64_t params = 0;
  for (size_t i = 0; i < plans.size(); ++i) {
    WeightPlan& w = plans[i];
    auto shape = w.op.getTensorType().getShape();
    std::vector<int64_t> dims(shape.begin(), shape.end());
    int scale = -1;
    std::vector<int64_t> block;
    if (FlatSymbolRefAttr s = w.op.getScaleAttr()) {
      scale = tensorIndex.lookup(s.getValue());
      block.assign(w.op.getBlock()->begin(), w.op.getBlock()->end());
    }
    // Parameters: every weight but FP8 block scales (block-scaled weights themselves count).
    if (!llvm::StringRef(w.op.getName()).ends_with("_scale_inv")) params += w.numel;
    if (auto it = shardPrimary.find(i); it != shardPrimary.end()) {
      tensors.push_back(createTensor(fbb, it->second));
      continue;
    }
    const QuantOut& q = quantOut[i];
    bool quantized = q.kind != fb::QuantKind_None;
    tensors.push_back(fb::CreateTensorDirect(
        fbb, w.op.getSymName().str().c_str(), sourceName(w.op).c_str(),
        quantized ? q.dtype : w.stored, &dims, segmentOf[i],
        quantized ? q.nbytes : w.numel * dtypeSize(w.stored), scale,
        block.empty() ? nullptr : &block, w.op.getExperts().value_or(0), 0, q.kind, q.group_size,
        q.scale, q.zero));
  }
  for (const ExtraTensor& x : extras)
    tensors.push_back(fb::CreateTensorDirect(fbb, x.name.c_str(), x.name.c_str(), fb::DType_F32,
                                             &x.shape, x.segment, x.nbytes));
  for (const TensorRecord& r : shardExtras) tensors.push_back(createTensor(fbb, r));
  if (synthetic) {
    for (const TensorRecord& r : syntheticTable->records) tensors.push_back(createTensor(fbb, r));
    params = syntheticTable->parameters;
  }
  std::vector<flatbuffers::Offset<fb::Segment>> segments;
  for (const auto& s : writer->segments())
    segments.push_back(fb::CreateSegment(fbb, s.offset, s.size, s.xxh64));

  size_t launchCount = 0;
  auto plan = buildPlan(fbb, module, tensorIndex, &launchCount);
  if (!plan) return plan.takeError();

  std::vector<int32_t> eos(config.eos_token_ids.begin(), config.eos_token_ids.end());
  auto model = fb::CreateModelInfoDirect(
      fbb, config.model_type.c_str(), config.vocab_size, config.hidden_size,
      config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads,
      config.head_dim, config.max_position_embeddings,
      config.bos_token_id ? static_cast<int32_t>(*config.bos_token_id) : -1, &eos,
      static_cast<int64_t>(params));
  flatbuffers::Offset<fb::Target> target;
  if (auto t = module->getAttrOfType<TargetAttr>(DSDialect::kTargetAttrName)) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> features;
    for (llvm::StringRef f : t.getFeatureNames()) features.push_back(fbb.CreateString(f.str()));
    const std::string name = options.target_name.empty() ? t.getName().str() : options.target_name;
    target = fb::CreateTargetDirect(fbb, name.c_str(), &features,
                                    stringifyTargetBackend(t.getBackend()).str().c_str(),
                                    t.getTriple().str().c_str(), t.getCpu().str().c_str(),
                                    static_cast<int32_t>(t.getVectorBits()));
  } else {
    std::vector<flatbuffers::Offset<flatbuffers::String>> features;
    target = fb::CreateTargetDirect(fbb, "host", &features);
  }

  std::optional<TokenizerFiles> readHere;
  if (!options.tokenizer_files) {
    auto read = readTokenizerFiles(options.model_dir);
    if (!read) return read.takeError();
    readHere = std::move(*read);
  }
  const TokenizerFiles& tokenizerFiles = options.tokenizer_files ? *options.tokenizer_files : *readHere;
  std::vector<flatbuffers::Offset<fb::Blob>> blobs;
  for (const auto& [name, bytes] : tokenizerFiles.blobs) {
    std::vector<uint8_t> data(bytes.begin(), bytes.end());
    blobs.push_back(fb::CreateBlobDirect(fbb, name.c_str(), &data));
  }
  const std::string& chat = tokenizerFiles.chat_template;
  llvm::SmallString<256> absDir(options.model_dir);
  llvm::sys::fs::make_absolute(absDir);
  std::vector<flatbuffers::Offset<fb::CodeObject>> code;
  std::vector<std::pair<const CodeObject*, uint32_t>> objects;
  if (options.code) objects.push_back({options.code, codeSegment});
  for (size_t e = 0; e < extraObjects.size(); ++e)
    objects.push_back({extraObjects[e], extraSegments[e]});
  for (const auto& [c, objectSegment] : objects) {
    std::vector<flatbuffers::Offset<flatbuffers::String>> features, symbols;
    for (const std::string& f : c->features) features.push_back(fbb.CreateString(f));
    for (const std::string& s : c->symbols) symbols.push_back(fbb.CreateString(s));
    std::vector<flatbuffers::Offset<fb::KernelResources>> kernels;
    for (const CodeObject::KernelResources& k : c->kernels)
      kernels.push_back(fb::CreateKernelResourcesDirect(fbb, k.name.c_str(), k.registers, k.shared_bytes,
                                                        k.stack_bytes, k.spill_store_bytes,
                                                        k.spill_load_bytes));
    code.push_back(fb::CreateCodeObjectDirect(fbb, c->target.c_str(), c->triple.c_str(),
                                              c->cpu.c_str(), &features,
                                              c->format == CodeFormat::Cubin ? fb::CodeFormat_Cubin
                                              : c->format == CodeFormat::Ptx ? fb::CodeFormat_Ptx
                                                                             : fb::CodeFormat_ElfSharedObject,
                                              ::ds::abi::kGeneratedKernelAbiVersion,
                                              objectSegment, c->bytes.size(), &symbols,
                                              kernels.empty() ? nullptr : &kernels, c->library));
  }
  flatbuffers::Offset<fb::CostFacts> costFacts = 0;
  if (const ArtifactCostFacts* c = options.cost) {
    // Bytes as stored (--dtype, --quant): scaled from the imported weights' bytes.
    const double scale = c->weight_bytes ? double(storedWeightBytes) / double(c->weight_bytes) : 1.0;
    costFacts = fb::CreateCostFactsDirect(
        fbb, storedWeightBytes, static_cast<uint64_t>(double(c->decode_bytes_per_token) * scale),
        c->flops_per_token, c->attention_flops_per_context_token, 0, c->device.c_str(),
        c->bandwidth_gbs, c->tflops);
  }
  auto root = fb::CreateArtifactDirect(fbb, ::ds::artifact::kSchemaVersion, ds_runtime_version(),
                                       absDir.c_str(), model, target, &tensors, &segments, *plan,
                                       &blobs, chat.empty() ? nullptr : chat.c_str(),
                                       code.empty() ? nullptr : &code, synthetic,
                                       synthetic ? options.synthetic_seed : 0, costFacts,
                                       options.int8_activations, options.bf16_activations,
                                       options.fp8_activations);
  fb::FinishArtifactBuffer(fbb, root);
  ::ds::Status st = writer->finish(fbb.GetBufferPointer(), fbb.GetSize());
  if (!st.isOk()) return llvm::createStringError(st.message());

  ArtifactStats stats;
  stats.weight_bytes = storedWeightBytes;
  stats.tensors = synthetic ? syntheticTable->index.size() : plans.size();
  stats.launches = launchCount;
  uint64_t size = 0;
  if (!llvm::sys::fs::file_size(options.output_path, size)) stats.file_bytes = size;
  return stats;
}

}  // namespace mlir::ds

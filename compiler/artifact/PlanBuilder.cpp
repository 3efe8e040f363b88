// buildPlan: dsk.alloc/view/launch in @step -> fb::Buffer / fb::Launch tables and the KV spec.
#include "compiler/artifact/PlanBuilder.h"

#include "abi/launch_abi.h"
#include "dialects/ds/DsDialect.h"
#include "dialects/dsk/DskDialect.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::ds {

namespace fb = ::ds::fb;

llvm::Expected<fb::DType> fbDType(Type type) {
  if (type.isF32()) return fb::DType_F32;
  if (type.isF16()) return fb::DType_F16;
  if (type.isBF16()) return fb::DType_BF16;
  if (isa<Float8E4M3FNType>(type)) return fb::DType_F8_E4M3;
  if (type.isInteger(8)) return fb::DType_I8;
  if (type.isInteger(32)) return fb::DType_I32;
  std::string s;
  llvm::raw_string_ostream os(s);
  os << type;
  return llvm::createStringError("element type %s has no artifact storage type", s.c_str());
}

namespace {

// dsk::Kernel, fb::Kernel and abi::KernelKind share one numbering (the launch ABI table);
// the name check catches an enum edited on one side only.
llvm::Expected<fb::Kernel> fbKernel(dsk::Kernel k) {
  const ::ds::abi::KernelSignature* sig = ::ds::abi::signature(static_cast<uint32_t>(k));
  if (!sig || dsk::stringifyKernel(k) != sig->name)
    return llvm::createStringError("kernel %s is not in the launch ABI table",
                                   dsk::stringifyKernel(k).str().c_str());
  return static_cast<fb::Kernel>(sig->kind);
}

int64_t i64(DictionaryAttr d, StringRef name, int64_t dflt = 0) {
  if (auto a = d.getAs<IntegerAttr>(name)) return a.getInt();
  return dflt;
}
float f32(DictionaryAttr d, StringRef name, float dflt = 0) {
  if (auto a = d.getAs<FloatAttr>(name)) return static_cast<float>(a.getValueAsDouble());
  return dflt;
}

fb::RopeScaling fbRopeScaling(RopeScaling s) {
  switch (s) {
    case RopeScaling::none: return fb::RopeScaling_None;
    case RopeScaling::linear: return fb::RopeScaling_Linear;
    case RopeScaling::llama3: return fb::RopeScaling_Llama3;
    case RopeScaling::yarn: return fb::RopeScaling_Yarn;
  }
  return fb::RopeScaling_None;
}

}  // namespace

llvm::Expected<flatbuffers::Offset<fb::Plan>> buildPlan(flatbuffers::FlatBufferBuilder& fbb,
                                                        ModuleOp module,
                                                        const llvm::StringMap<int>& tensorIndex,
                                                        size_t* launchCount) {
  auto step = module.lookupSymbol<func::FuncOp>("step");
  if (!step) return llvm::createStringError("module has no func @step (run ds-convert-to-kernels)");
  Block& body = step.getBody().front();

  std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
  llvm::DenseMap<Value, int> ids;
  llvm::DenseMap<int, fb::RowSpace> rowsOf;
  llvm::DenseMap<int, int> rootOf;  // view -> the buffer owning its memory
  auto addBuffer = [&](Value v, fb::RowSpace rows, int aliasOf,
                       int64_t arenaOffset = -1) -> llvm::Error {
    auto type = cast<MemRefType>(v.getType());
    llvm::Expected<fb::DType> dtype = fbDType(type.getElementType());
    if (!dtype) return dtype.takeError();
    std::vector<int64_t> cols(type.getShape().begin() + 1, type.getShape().end());
    int id = static_cast<int>(buffers.size());
    buffers.push_back(fb::CreateBufferDirect(fbb, rows, 0, &cols, *dtype, aliasOf, arenaOffset));
    ids[v] = id;
    rowsOf[id] = rows;
    return llvm::Error::success();
  };
  const fb::RowSpace argRows[3] = {fb::RowSpace_Tokens, fb::RowSpace_Tokens,
                                   fb::RowSpace_LogitRows};
  for (unsigned i = 0; i < 3; ++i)
    if (llvm::Error e = addBuffer(body.getArgument(i), argRows[i], -1)) return std::move(e);

  std::vector<flatbuffers::Offset<fb::Launch>> launches;
  for (Operation& op : body.without_terminator()) {
    if (auto alloc = dyn_cast<dsk::AllocOp>(op)) {
      fb::RowSpace rows = alloc.getRows() == dsk::RowSpace::logit_rows ? fb::RowSpace_LogitRows
                                                                        : fb::RowSpace_Tokens;
      if (llvm::Error e = addBuffer(alloc.getBuffer(), rows, -1, alloc.getOffset().value_or(-1)))
        return std::move(e);
      continue;
    }
    if (auto view = dyn_cast<dsk::ViewOp>(op)) {
      // Views always name the root buffer, so the runtime never chases alias chains.
      int source = ids.lookup(view.getSource());
      if (auto it = rootOf.find(source); it != rootOf.end()) source = it->second;
      if (llvm::Error e = addBuffer(view.getResult(), rowsOf[source], source)) return std::move(e);
      rootOf[ids.lookup(view.getResult())] = source;
      continue;
    }
    auto launch = dyn_cast<dsk::LaunchOp>(op);
    if (!launch) return llvm::createStringError("unexpected op in @step: %s",
                                                op.getName().getStringRef().str().c_str());
    std::vector<int> ins, outs, weights;
    for (Value v : launch.getIns()) ins.push_back(ids.lookup(v));
    for (Value v : launch.getOuts()) outs.push_back(ids.lookup(v));
    for (Attribute a : launch.getWeights()) {
      if (isa<UnitAttr>(a)) {  // an absent optional slot
        weights.push_back(-1);
        continue;
      }
      StringRef name = cast<FlatSymbolRefAttr>(a).getValue();
      auto it = tensorIndex.find(name);
      if (it == tensorIndex.end())
        return llvm::createStringError("launch references unknown weight @%s", name.str().c_str());
      weights.push_back(it->second);
    }
    DictionaryAttr p = launch.getParams();
    fb::Params paramsType = fb::Params_NONE;
    flatbuffers::Offset<void> params;
    auto shapeOf = [&](Value v) { return cast<MemRefType>(v.getType()).getShape(); };
    switch (launch.getKernel()) {
      case dsk::Kernel::embed:
        if (int64_t rows = i64(p, "rows_per_rank")) {
          paramsType = fb::Params_EmbedParams;
          params = fb::CreateEmbedParams(fbb, rows).Union();
        }
        break;
      case dsk::Kernel::moe_experts:
        if (int64_t perRank = i64(p, "experts_per_rank")) {
          paramsType = fb::Params_MoEExpertsParams;
          params = fb::CreateMoEExpertsParams(fbb, perRank).Union();
        }
        break;
      case dsk::Kernel::rms_norm:
      case dsk::Kernel::add_rms_norm:
        paramsType = fb::Params_NormParams;
        params = fb::CreateNormParams(fbb, f32(p, "eps"), p.contains("all_reduce_rhs")).Union();
        break;
      case dsk::Kernel::slice:
        paramsType = fb::Params_SliceParams;
        params = fb::CreateSliceParams(fbb, i64(p, "offset"), i64(p, "size")).Union();
        break;
      case dsk::Kernel::rope:
      case dsk::Kernel::qkv_rope:
      case dsk::Kernel::mla_project: {
        auto r = p.getAs<RopeAttr>("rope");
        if (!r) return llvm::createStringError("rope launch without #ds.rope parameters");
        auto rope = fb::CreateRopeParams(
                     fbb, r.getTheta().convertToDouble(), r.getDim(), r.getInterleaved(),
                     fbRopeScaling(r.getScaling()), r.getFactor().convertToDouble(),
                     r.getOriginalMaxPosition(), r.getLowFreqFactor().convertToDouble(),
                     r.getHighFreqFactor().convertToDouble(), r.getBetaFast().convertToDouble(),
                     r.getBetaSlow().convertToDouble(), r.getMscale().convertToDouble(),
                     r.getMscaleAllDim().convertToDouble(),
                     r.getAttentionFactor().convertToDouble());
        if (launch.getKernel() == dsk::Kernel::mla_project) {
          paramsType = fb::Params_MlaProjectParams;
          params = fb::CreateMlaProjectParams(fbb, f32(p, "eps"), rope).Union();
        } else {
          paramsType = fb::Params_RopeParams;
          params = rope.Union();
        }
        break;
      }
      case dsk::Kernel::attention: {
        int64_t layer = i64(p, "layer");
        paramsType = fb::Params_AttentionParams;
        params = fb::CreateAttentionParams(fbb, layer, f32(p, "scale"), i64(p, "sliding_window"))
                     .Union();
        break;
      }
      case dsk::Kernel::mla_attention: {
        int64_t layer = i64(p, "layer");
        auto qNope = shapeOf(launch.getIns()[0]);
        auto out = shapeOf(launch.getOuts()[0]);
        paramsType = fb::Params_MlaParams;
        params = fb::CreateMlaParams(fbb, layer, f32(p, "scale"), qNope[1], qNope[2], out[2])
                     .Union();
        break;
      }
      case dsk::Kernel::moe_gate: {
        auto scoring = p.getAs<MoeScoringAttr>("scoring");
        auto method = p.getAs<MoeTopkMethodAttr>("topk_method");
        auto norm = p.getAs<BoolAttr>("norm_topk_prob");
        if (!scoring || !method)
          return llvm::createStringError("moe_gate launch without scoring/topk_method");
        fb::MoeTopkMethod m = fb::MoeTopkMethod_Greedy;
        if (method.getValue() == MoeTopkMethod::group_limited_greedy)
          m = fb::MoeTopkMethod_GroupLimitedGreedy;
        if (method.getValue() == MoeTopkMethod::noaux_tc) m = fb::MoeTopkMethod_NoauxTc;
        paramsType = fb::Params_MoEGateParams;
        params = fb::CreateMoEGateParams(
                     fbb, i64(p, "top_k"), i64(p, "n_group", 1), i64(p, "topk_group", 1),
                     scoring.getValue() == MoeScoring::sigmoid ? fb::MoeScoring_Sigmoid
                                                                 : fb::MoeScoring_Softmax,
                     m, norm && norm.getValue(), f32(p, "routed_scaling_factor", 1.0f))
                     .Union();
        break;
      }
      default:
        break;
    }
    // Launches outlined by ds-codegen-outline-kernels run the one generated code object.
    auto codeSymbol = launch->getAttrOfType<StringAttr>("code_symbol");
    std::vector<flatbuffers::Offset<flatbuffers::String>> epilogues;
    if (auto list = launch->getAttrOfType<ArrayAttr>("epilogue_symbols"))
      for (Attribute a : list) epilogues.push_back(fbb.CreateString(cast<StringAttr>(a).str()));
    llvm::Expected<fb::Kernel> kernel = fbKernel(launch.getKernel());
    if (!kernel) return kernel.takeError();
    launches.push_back(fb::CreateLaunchDirect(fbb, *kernel, &ins, &outs,
                                              &weights, paramsType, params, codeSymbol ? 0 : -1,
                                              codeSymbol ? codeSymbol.str().c_str() : nullptr,
                                              epilogues.empty() ? nullptr : &epilogues));
  }
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  // The KV cache is the step's !dsk.kv_cache argument, not inferred from attention shapes.
  flatbuffers::Offset<fb::KVCacheSpec> kv;
  if (body.getNumArguments() > 3) {
    auto type = dyn_cast<dsk::KVCacheType>(body.getArgument(3).getType());
    if (!type) return llvm::createStringError("@step's fourth argument is not a !dsk.kv_cache");
    llvm::Expected<fb::DType> dtype = fbDType(type.getElementType());
    if (!dtype) return dtype.takeError();
    kv = fb::CreateKVCacheSpec(
        fbb, type.getKind() == dsk::KVKind::gqa ? fb::KVKind_GQA : fb::KVKind_MLA,
        type.getLayers(), type.getBlockSize(), type.getKvHeads(), type.getHeadDim(),
        type.getVDim(), type.getRank(), type.getRopeDim(), *dtype);
  } else {
    kv = fb::CreateKVCacheSpec(fbb, fb::KVKind_None);
  }
  *launchCount = launches.size();
  auto arena = [&](StringRef name) -> int64_t {
    auto a = step->getAttrOfType<IntegerAttr>(name);
    return a ? a.getInt() : 0;
  };
  auto tp = module->getAttrOfType<IntegerAttr>("ds.tp");
  return fb::CreatePlanDirect(fbb, &buffers, &launches, ids.lookup(body.getArgument(0)),
                              ids.lookup(body.getArgument(1)), ids.lookup(body.getArgument(2)),
                              ids.lookup(ret.getOperand(0)), kv,
                              arena("dsk.arena_bytes_per_token"),
                              arena("dsk.arena_bytes_per_logit_row"),
                              tp ? static_cast<int32_t>(tp.getInt()) : 1);
}

}  // namespace mlir::ds

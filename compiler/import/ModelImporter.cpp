// Builds the ds graph of Llama / Qwen2 / Mistral and DeepSeek-V2/V3 decoders from a ModelConfig.
#include "compiler/import/ModelImporter.h"

#include <cmath>

#include "compiler/import/WeightTable.h"
#include "dialects/ds/DsDialect.h"
#include "ingest/checkpoint.h"
#include "ingest/hf_config.h"
#include "llvm/ADT/Twine.h"

namespace mlir::ds {

namespace {

using ::ds::ModelConfig;

// DeepSeek's q_a_layernorm / kv_a_layernorm use RMSNorm's default eps, not config.rms_norm_eps,
// in both DeepSeek's reference code and Hugging Face transformers.
constexpr double kLoraNormEps = 1e-6;

// Emits the ops of one model; weight lookups fail with a message, which `check` propagates.
class GraphBuilder {
 public:
  GraphBuilder(ModuleOp module, const ModelConfig& config, WeightTable& weights, Type act)
      : b_(module.getContext()), loc_(b_.getUnknownLoc()), config_(config), weights_(weights),
        act_(act) {}

  llvm::Error build(ModuleOp module);

 private:
  RankedTensorType tensor(llvm::ArrayRef<int64_t> trailing) {
    llvm::SmallVector<int64_t> shape{ShapedType::kDynamic};
    shape.append(trailing.begin(), trailing.end());
    return RankedTensorType::get(shape, act_);
  }
  FlatSymbolRefAttr w(const llvm::Twine& name, llvm::ArrayRef<int64_t> shape) {
    if (error_) return {};
    llvm::Expected<FlatSymbolRefAttr> ref = weights_.get(name.str(), shape);
    if (!ref) {
      error_ = ref.takeError();
      return {};
    }
    return *ref;
  }
  FlatSymbolRefAttr stacked(const llvm::Twine& pattern, int64_t experts,
                            llvm::ArrayRef<int64_t> shape) {
    if (error_) return {};
    llvm::Expected<FlatSymbolRefAttr> ref = weights_.getStacked(pattern.str(), experts, shape);
    if (!ref) {
      error_ = ref.takeError();
      return {};
    }
    return *ref;
  }

  Value linear(const llvm::Twine& name, Value x, int64_t out, bool bias = false) {
    int64_t in = cast<RankedTensorType>(x.getType()).getDimSize(1);
    FlatSymbolRefAttr weight = w(name + ".weight", {out, in});
    FlatSymbolRefAttr biasRef = bias ? w(name + ".bias", {out}) : FlatSymbolRefAttr();
    if (error_) return x;
    return LinearOp::create(b_, loc_, tensor({out}), weight, x, biasRef);
  }
  Value rmsNorm(const llvm::Twine& name, Value x) { return rmsNorm(name, x, config_.rms_norm_eps); }
  Value rmsNorm(const llvm::Twine& name, Value x, double eps) {
    auto type = cast<RankedTensorType>(x.getType());
    FlatSymbolRefAttr weight = w(name + ".weight", {type.getShape().back()});
    if (error_) return x;
    return RMSNormOp::create(b_, loc_, type, weight, x, b_.getF32FloatAttr(static_cast<float>(eps)));
  }
  Value view(Value x, llvm::ArrayRef<int64_t> trailing) {
    return ViewOp::create(b_, loc_, tensor(trailing), x);
  }
  Value slice(Value x, int64_t offset, int64_t size) {
    auto type = cast<RankedTensorType>(x.getType());
    llvm::SmallVector<int64_t> trailing(type.getShape().drop_front().drop_back());
    trailing.push_back(size);
    return SliceOp::create(b_, loc_, tensor(trailing), x, b_.getI64IntegerAttr(offset),
                           b_.getI64IntegerAttr(size));
  }
  Value rope(Value x, int64_t dim, bool interleaved) {
    return RopeOp::create(b_, loc_, x.getType(), x, positions_, ropeAttr(dim, interleaved));
  }
  Value add(Value a, Value c) { return AddOp::create(b_, loc_, a.getType(), a, c); }
  Value mlp(const llvm::Twine& prefix, Value x, int64_t inter) {
    Value gate = linear(prefix + ".gate_proj", x, inter);
    Value up = linear(prefix + ".up_proj", x, inter);
    if (error_) return x;
    Value act = SwiGLUOp::create(b_, loc_, gate.getType(), gate, up);
    return linear(prefix + ".down_proj", act, config_.hidden_size);
  }

  RopeAttr ropeAttr(int64_t dim, bool interleaved);
  Value gqaAttention(int64_t layer, Value x);
  Value mlaAttention(int64_t layer, Value x);
  Value moe(int64_t layer, Value x);

  OpBuilder b_;
  Location loc_;
  const ModelConfig& config_;
  WeightTable& weights_;
  Type act_;
  Value positions_, cache_;
  llvm::Error error_ = llvm::Error::success();
};

RopeAttr GraphBuilder::ropeAttr(int64_t dim, bool interleaved) {
  const ::ds::RopeScaling& s = config_.rope_scaling;
  RopeScaling kind = RopeScaling::none;
  switch (s.type) {
    case ::ds::RopeScalingType::kNone: kind = RopeScaling::none; break;
    case ::ds::RopeScalingType::kLinear: kind = RopeScaling::linear; break;
    case ::ds::RopeScalingType::kLlama3: kind = RopeScaling::llama3; break;
    case ::ds::RopeScalingType::kYarn: kind = RopeScaling::yarn; break;
  }
  bool scaled = kind != RopeScaling::none;
  auto f = [](double v) { return llvm::APFloat(v); };
  // Unused parameters keep the attribute's defaults so the printed IR shows only what matters.
  bool llama3 = kind == RopeScaling::llama3, yarn = kind == RopeScaling::yarn;
  return RopeAttr::get(
      b_.getContext(), f(config_.rope_theta), dim, interleaved, kind, f(scaled ? s.factor : 1.0),
      (llama3 || yarn) ? s.original_max_position_embeddings : 0,
      f(llama3 ? s.low_freq_factor : 1.0), f(llama3 ? s.high_freq_factor : 4.0),
      f(yarn ? s.beta_fast : 32.0), f(yarn ? s.beta_slow : 1.0), f(yarn ? s.mscale : 0.0),
      f(yarn ? s.mscale_all_dim : 0.0),
      f(yarn && s.attention_factor ? *s.attention_factor : 0.0));
}

Value GraphBuilder::gqaAttention(int64_t layer, Value x) {
  std::string p = "model.layers." + std::to_string(layer) + ".self_attn";
  int64_t hq = config_.num_attention_heads, hkv = config_.num_key_value_heads;
  int64_t d = config_.head_dim;
  bool qkvBias = config_.attention_qkv_bias;
  Value q = linear(p + ".q_proj", x, hq * d, qkvBias);
  Value k = linear(p + ".k_proj", x, hkv * d, qkvBias);
  Value v = linear(p + ".v_proj", x, hkv * d, qkvBias);
  if (error_) return x;
  q = rope(view(q, {hq, d}), d, /*interleaved=*/false);
  k = rope(view(k, {hkv, d}), d, /*interleaved=*/false);
  v = view(v, {hkv, d});
  int64_t window = config_.slidingWindow(layer);
  Value a = AttentionOp::create(
      b_, loc_, tensor({hq, d}), q, k, v, positions_, cache_, b_.getI64IntegerAttr(layer),
      b_.getF32FloatAttr(static_cast<float>(config_.attentionSoftmaxScale())),
      window > 0 ? b_.getI64IntegerAttr(window) : IntegerAttr());
  return linear(p + ".o_proj", view(a, {hq * d}), config_.hidden_size, config_.attention_o_bias);
}

Value GraphBuilder::mlaAttention(int64_t layer, Value x) {
  const ::ds::DeepseekConfig& ds = config_.deepseek;
  std::string p = "model.layers." + std::to_string(layer) + ".self_attn";
  int64_t h = config_.num_attention_heads, nope = ds.qk_nope_head_dim,
          rdim = ds.qk_rope_head_dim, vdim = ds.v_head_dim, rank = ds.kv_lora_rank;
  Value q;
  if (ds.q_lora_rank > 0) {
    Value qa = linear(p + ".q_a_proj", x, ds.q_lora_rank);
    qa = rmsNorm(p + ".q_a_layernorm", qa, kLoraNormEps);
    q = linear(p + ".q_b_proj", qa, h * (nope + rdim));
  } else {
    q = linear(p + ".q_proj", x, h * (nope + rdim));
  }
  Value kva = linear(p + ".kv_a_proj_with_mqa", x, rank + rdim);
  FlatSymbolRefAttr kvB = w(p + ".kv_b_proj.weight", {h * (nope + vdim), rank});
  if (error_) return x;
  Value q3 = view(q, {h, nope + rdim});
  Value qNope = slice(q3, 0, nope);
  Value qRope = rope(slice(q3, nope, rdim), rdim, ds.rope_interleave);
  Value cKv = rmsNorm(p + ".kv_a_layernorm", slice(kva, 0, rank), kLoraNormEps);
  Value kRope = view(rope(view(slice(kva, rank, rdim), {1, rdim}), rdim, ds.rope_interleave),
                     {rdim});
  Value a = MLAAttentionOp::create(
      b_, loc_, tensor({h, vdim}), kvB, qNope, qRope, cKv, kRope, positions_, cache_,
      b_.getI64IntegerAttr(layer),
      b_.getF32FloatAttr(static_cast<float>(config_.attentionSoftmaxScale())));
  return linear(p + ".o_proj", view(a, {h * vdim}), config_.hidden_size);
}

Value GraphBuilder::moe(int64_t layer, Value x) {
  const ::ds::DeepseekConfig& ds = config_.deepseek;
  std::string p = "model.layers." + std::to_string(layer) + ".mlp";
  int64_t hidden = config_.hidden_size, e = ds.n_routed_experts, k = ds.num_experts_per_tok;
  int64_t inter = ds.moe_intermediate_size;
  FlatSymbolRefAttr gate = w(p + ".gate.weight", {e, hidden});
  FlatSymbolRefAttr bias =
      ds.gate_has_correction_bias ? w(p + ".gate.e_score_correction_bias", {e}) : FlatSymbolRefAttr();
  FlatSymbolRefAttr eg = stacked(p + ".experts.{e}.gate_proj.weight", e, {inter, hidden});
  FlatSymbolRefAttr eu = stacked(p + ".experts.{e}.up_proj.weight", e, {inter, hidden});
  FlatSymbolRefAttr ed = stacked(p + ".experts.{e}.down_proj.weight", e, {hidden, inter});
  FlatSymbolRefAttr sg, su, sd;
  if (ds.n_shared_experts > 0) {
    int64_t sInter = inter * ds.n_shared_experts;
    sg = w(p + ".shared_experts.gate_proj.weight", {sInter, hidden});
    su = w(p + ".shared_experts.up_proj.weight", {sInter, hidden});
    sd = w(p + ".shared_experts.down_proj.weight", {hidden, sInter});
  }
  if (error_) return x;
  MoeScoring scoring = ds.scoring_func == ::ds::ScoringFunc::kSigmoid ? MoeScoring::sigmoid
                                                                       : MoeScoring::softmax;
  MoeTopkMethod method = MoeTopkMethod::greedy;
  if (ds.topk_method == ::ds::TopkMethod::kGroupLimitedGreedy)
    method = MoeTopkMethod::group_limited_greedy;
  if (ds.topk_method == ::ds::TopkMethod::kNoauxTc) method = MoeTopkMethod::noaux_tc;
  bool normTopk = ds.norm_topk_prob;
  // Follow the reference semantics (transformers, DeepSeek's code): the V3 router is always
  // sigmoid + noaux_tc with the correction bias; the V2 router never renormalises top-k weights.
  if (config_.arch == ::ds::ModelArch::kDeepseekV3) {
    scoring = MoeScoring::sigmoid;
    method = MoeTopkMethod::noaux_tc;
    if (!bias) bias = w(p + ".gate.e_score_correction_bias", {e});
    if (error_) return x;
  } else {
    normTopk = false;
  }
  auto f32 = b_.getF32Type();
  auto routeType = [&](Type t) {
    return RankedTensorType::get({ShapedType::kDynamic, k}, t);
  };
  auto gateOp = MoEGateOp::create(
      b_, loc_, routeType(f32), routeType(b_.getI32Type()), gate, x, b_.getI64IntegerAttr(k),
      MoeScoringAttr::get(b_.getContext(), scoring),
      MoeTopkMethodAttr::get(b_.getContext(), method), b_.getI64IntegerAttr(ds.n_group),
      b_.getI64IntegerAttr(ds.topk_group), b_.getBoolAttr(normTopk),
      b_.getF32FloatAttr(static_cast<float>(ds.routed_scaling_factor)), bias);
  return MoEExpertsOp::create(b_, loc_, x.getType(), x, gateOp.getWeights(), gateOp.getIds(),
                              eg, eu, ed, sg, su, sd, /*experts_per_rank=*/IntegerAttr());
}

llvm::Error GraphBuilder::build(ModuleOp module) {
  MLIRContext* ctx = module.getContext();
  int64_t hidden = config_.hidden_size, vocab = config_.vocab_size;
  auto ids = RankedTensorType::get({ShapedType::kDynamic}, b_.getI32Type());
  auto logitsType = RankedTensorType::get({ShapedType::kDynamic, vocab}, b_.getF32Type());
  auto fnType = FunctionType::get(ctx, {ids, ids, KVCacheType::get(ctx), ids}, {logitsType});
  b_.setInsertionPointToEnd(module.getBody());
  auto fn = func::FuncOp::create(b_, loc_, "forward", fnType);
  fn.setArgAttr(0, "ds.name", b_.getStringAttr("token_ids"));
  fn.setArgAttr(1, "ds.name", b_.getStringAttr("positions"));
  fn.setArgAttr(2, "ds.name", b_.getStringAttr("kv_cache"));
  fn.setArgAttr(3, "ds.name", b_.getStringAttr("logit_rows"));
  Block* body = fn.addEntryBlock();
  b_.setInsertionPointToStart(body);
  positions_ = body->getArgument(1);
  cache_ = body->getArgument(2);

  FlatSymbolRefAttr embed = w("model.embed_tokens.weight", {vocab, hidden});
  if (error_) return std::move(error_);
  Value h = EmbedOp::create(b_, loc_, tensor({hidden}), embed, body->getArgument(0),
                            /*rows_per_rank=*/IntegerAttr());
  for (int64_t layer = 0; layer < config_.num_hidden_layers && !error_; ++layer) {
    std::string p = "model.layers." + std::to_string(layer);
    Value n = rmsNorm(p + ".input_layernorm", h);
    Value a = config_.is_deepseek ? mlaAttention(layer, n) : gqaAttention(layer, n);
    if (error_) break;
    h = add(h, a);
    n = rmsNorm(p + ".post_attention_layernorm", h);
    Value m = config_.is_deepseek && config_.isMoELayer(layer)
                  ? moe(layer, n)
                  : mlp(p + ".mlp", n, config_.intermediate_size);
    if (error_) break;
    h = add(h, m);
  }
  if (error_) return std::move(error_);
  Value f = rmsNorm("model.norm", h);
  FlatSymbolRefAttr head = config_.tie_word_embeddings ? embed : w("lm_head.weight", {vocab, hidden});
  if (error_) return std::move(error_);
  Value logits = LogitsOp::create(b_, loc_, logitsType, head, f, body->getArgument(3));
  func::ReturnOp::create(b_, loc_, logits);
  return llvm::Error::success();
}

// The config facts later stages need (KV cache shapes, tokens) as a module attribute.
DictionaryAttr configAttr(OpBuilder& b, const ModelConfig& c) {
  llvm::SmallVector<NamedAttribute> attrs;
  auto i64 = [&](llvm::StringRef name, int64_t v) {
    attrs.emplace_back(b.getStringAttr(name), b.getI64IntegerAttr(v));
  };
  attrs.emplace_back(b.getStringAttr("model_type"), b.getStringAttr(c.model_type));
  i64("vocab_size", c.vocab_size);
  i64("hidden_size", c.hidden_size);
  i64("num_hidden_layers", c.num_hidden_layers);
  i64("num_attention_heads", c.num_attention_heads);
  i64("num_key_value_heads", c.num_key_value_heads);
  i64("head_dim", c.head_dim);
  i64("max_position_embeddings", c.max_position_embeddings);
  if (c.is_deepseek) {
    i64("kv_lora_rank", c.deepseek.kv_lora_rank);
    i64("qk_rope_head_dim", c.deepseek.qk_rope_head_dim);
    i64("v_head_dim", c.deepseek.v_head_dim);
  }
  attrs.emplace_back(b.getStringAttr("tie_word_embeddings"), b.getBoolAttr(c.tie_word_embeddings));
  return b.getDictionaryAttr(attrs);
}

}  // namespace

llvm::Expected<OwningOpRef<ModuleOp>> importModel(MLIRContext& context, const ModelConfig& config,
                                                  const ::ds::Checkpoint& checkpoint,
                                                  const ImportOptions& options) {
  context.loadDialect<DSDialect, func::FuncDialect>();
  OpBuilder b(&context);
  Type act;
  if (options.activation_type == "f32") act = b.getF32Type();
  else if (options.activation_type == "bf16") act = b.getBF16Type();
  else if (options.activation_type == "f16") act = b.getF16Type();
  else
    return llvm::createStringError("unsupported activation type '%s' (f32, bf16, f16)",
                                   options.activation_type.c_str());
  OwningOpRef<ModuleOp> module = ModuleOp::create(b.getUnknownLoc());
  (*module)->setAttr("ds.config", configAttr(b, config));
  WeightTable weights(*module, checkpoint, config);
  GraphBuilder graph(*module, config, weights, act);
  if (llvm::Error err = graph.build(*module)) return std::move(err);
  // Declarations first, in first-use order, then the graph.
  auto fn = *module->getOps<func::FuncOp>().begin();
  for (auto weight : llvm::make_early_inc_range(module->getOps<WeightOp>()))
    weight->moveBefore(fn);
  return module;
}

llvm::Expected<OwningOpRef<ModuleOp>> importModelDirectory(MLIRContext& context,
                                                           const std::string& dir,
                                                           const ImportOptions& options) {
  ::ds::StatusOr<ModelConfig> config = ::ds::loadHFConfig(dir);
  if (!config.isOk()) return llvm::createStringError(config.status().message());
  ::ds::StatusOr<::ds::Checkpoint> checkpoint = ::ds::Checkpoint::open(dir);
  if (!checkpoint.isOk()) return llvm::createStringError(checkpoint.status().message());
  return importModel(context, *config, checkpoint.value(), options);
}

}  // namespace mlir::ds

// StepPlan::decode: the artifact's (already checked) flatbuffer plan into plain structs.
#include "artifact/artifact_info.h"
#include "artifact/artifact_reader.h"
#include "hal/device.h"
#include "hal/launch.h"

namespace ds::hal {

namespace fbs = ::ds::fb;

namespace {

RopeDesc ropeOf(const fbs::RopeParams* r) {
  RopeDesc d;
  if (!r) return d;
  d.theta = r->theta();
  d.dim = r->dim();
  d.interleaved = r->interleaved();
  d.scaling = static_cast<uint8_t>(r->scaling());
  d.factor = r->factor();
  d.original_max_position = r->original_max_position();
  d.low_freq_factor = r->low_freq_factor();
  d.high_freq_factor = r->high_freq_factor();
  d.beta_fast = r->beta_fast();
  d.beta_slow = r->beta_slow();
  d.mscale = r->mscale();
  d.mscale_all_dim = r->mscale_all_dim();
  d.attention_factor = r->attention_factor();
  return d;
}

LaunchParams paramsOf(const fbs::Launch& l) {
  LaunchParams p;
  switch (l.params_type()) {
    case fbs::Params_NormParams:
      p.eps = l.params_as_NormParams()->eps();
      p.all_reduce_rhs = l.params_as_NormParams()->all_reduce_rhs();
      break;
    case fbs::Params_SliceParams:
      p.offset = l.params_as_SliceParams()->offset();
      p.size = l.params_as_SliceParams()->size();
      break;
    case fbs::Params_RopeParams: p.rope = ropeOf(l.params_as_RopeParams()); break;
    case fbs::Params_AttentionParams: {
      const fbs::AttentionParams* a = l.params_as_AttentionParams();
      p.layer = a->layer();
      p.scale = a->scale();
      p.sliding_window = a->sliding_window();
      break;
    }
    case fbs::Params_MlaParams: {
      const fbs::MlaParams* m = l.params_as_MlaParams();
      p.layer = m->layer();
      p.scale = m->scale();
      p.heads = m->heads();
      p.nope_dim = m->nope_dim();
      p.v_dim = m->v_dim();
      break;
    }
    case fbs::Params_MoEGateParams: {
      const fbs::MoEGateParams* g = l.params_as_MoEGateParams();
      p.top_k = g->top_k();
      p.n_group = g->n_group();
      p.topk_group = g->topk_group();
      p.scoring = static_cast<uint8_t>(g->scoring());
      p.topk_method = static_cast<uint8_t>(g->method());
      p.norm_topk_prob = g->norm_topk_prob();
      p.routed_scaling_factor = g->routed_scaling_factor();
      break;
    }
    case fbs::Params_MlaProjectParams:
      p.eps = l.params_as_MlaProjectParams()->eps();
      p.rope = ropeOf(l.params_as_MlaProjectParams()->rope());
      break;
    case fbs::Params_EmbedParams: p.rows_per_rank = l.params_as_EmbedParams()->rows_per_rank(); break;
    case fbs::Params_MoEExpertsParams:
      p.experts_per_rank = l.params_as_MoEExpertsParams()->experts_per_rank();
      break;
    default: break;
  }
  return p;
}

}  // namespace

StatusOr<StepPlan> StepPlan::decode(const artifact::Artifact& artifact) {
  const fbs::Artifact* meta = artifact.meta();
  const fbs::Plan* plan = meta->plan();
  if (!plan || !plan->buffers() || !plan->launches() || !plan->kv_cache() || !meta->model())
    return dataLoss(artifact.path() + ": artifact has no step plan");
  StepPlan s;
  for (const fbs::Buffer* b : *plan->buffers()) {
    BufferDesc d;
    d.rows = static_cast<RowSpace>(b->rows());
    d.fixed_rows = b->fixed_rows();
    if (b->cols()) d.cols.assign(b->cols()->begin(), b->cols()->end());
    for (int64_t c : d.cols) d.row_elems *= c;
    d.dtype = static_cast<DType>(b->dtype());
    d.row_bytes = static_cast<uint64_t>(d.row_elems) * artifact::dtypeSize(b->dtype());
    d.alias_of = b->alias_of();
    d.arena_offset = b->arena_offset();
    s.buffers.push_back(std::move(d));
  }
  for (const fbs::Launch* l : *plan->launches()) {
    LaunchDesc d;
    d.sig = abi::signature(static_cast<uint32_t>(l->kernel()));
    if (!d.sig) return dataLoss(artifact.path() + ": unknown kernel");  // checked at open
    d.kind = d.sig->kind;
    if (l->inputs()) d.inputs.assign(l->inputs()->begin(), l->inputs()->end());
    if (l->outputs()) d.outputs.assign(l->outputs()->begin(), l->outputs()->end());
    d.weights.assign(d.sig->num_weights, -1);
    if (l->weights())
      for (uint32_t i = 0; i < l->weights()->size() && i < d.weights.size(); ++i)
        d.weights[i] = l->weights()->Get(i);
    d.params = paramsOf(*l);
    d.code_object = l->code_object();
    if (l->code_symbol()) d.code_symbol = l->code_symbol()->str();
    if (l->epilogue_symbols())
      for (const auto* e : *l->epilogue_symbols()) d.epilogue_symbols.push_back(e ? e->str() : "");
    s.launches.push_back(std::move(d));
  }
  s.token_ids = plan->token_ids();
  s.positions = plan->positions();
  s.logit_rows = plan->logit_rows();
  s.logits = plan->logits();
  const fbs::KVCacheSpec* kv = plan->kv_cache();
  s.kv.kind = static_cast<KVKind>(kv->kind());
  s.kv.dtype = static_cast<DType>(kv->dtype());
  s.kv.num_layers = kv->num_layers();
  s.kv.block_size = kv->block_size();
  s.kv.kv_heads = kv->kv_heads();
  s.kv.head_dim = kv->head_dim();
  s.kv.v_dim = kv->v_dim();
  s.kv.rank = kv->rank();
  s.kv.rope_dim = kv->rope_dim();
  s.kv.bytes_per_slot = artifact::kvBytesPerSlot(*kv);
  s.arena_bytes_per_token = plan->arena_bytes_per_token();
  s.arena_bytes_per_logit_row = plan->arena_bytes_per_logit_row();
  s.tp_size = plan->tp_size();
  s.vocab = meta->model()->vocab_size();
  s.weight_bytes = artifact::weightBytes(*meta);
  return s;
}

}  // namespace ds::hal

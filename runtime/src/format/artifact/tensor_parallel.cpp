// checkTensorParallel / shardIndex: the runner's reading of Plan.tp_size and Tensor.shards.
#include "artifact/tensor_parallel.h"

#include <string>

#include "artifact/artifact_reader.h"

namespace ds {

namespace fbs = ::ds::fb;

namespace {

std::string tensorName(const fbs::Tensor& t, uint32_t index) {
  return "tensor '" + (t.name() ? t.name()->str() : std::string()) + "' (tensors[" +
         std::to_string(index) + "])";
}

size_t shapeRank(const fbs::Tensor& t) { return t.shape() ? t.shape()->size() : 0; }

}  // namespace

Status checkTensorParallel(const artifact::Artifact& artifact) {
  const fbs::Artifact& meta = *artifact.meta();
  const fbs::Plan* plan = meta.plan();
  if (!plan) return Status::ok();  // the runner reports the missing plan itself
  const std::string& file = artifact.path();
  const int tp = plan->tp_size();
  if (tp < 1 || tp > kMaxTensorParallel)
    return dataLoss(file + ": plan.tp_size " + std::to_string(tp) + " is outside [1, " +
                    std::to_string(kMaxTensorParallel) + "]");
  const auto* tensors = meta.tensors();
  const uint32_t n = tensors ? tensors->size() : 0;
  for (uint32_t i = 0; i < n; ++i) {
    const fbs::Tensor& t = *tensors->Get(i);
    if (!t.shards()) continue;
    const std::string where = file + ": " + tensorName(t, i);
    if (t.shards()->size() != static_cast<uint32_t>(tp))
      return dataLoss(where + " has " + std::to_string(t.shards()->size()) +
                      " shards but plan.tp_size is " + std::to_string(tp));
    if (t.shards()->Get(0) != i)
      return dataLoss(where + ": shards[0] is tensor " + std::to_string(t.shards()->Get(0)) +
                      ", not the entry itself");
    for (int r = 0; r < tp; ++r) {
      const uint32_t s = t.shards()->Get(r);
      if (s >= n)
        return dataLoss(where + ": shards[" + std::to_string(r) + "] = " + std::to_string(s) +
                        " is outside the " + std::to_string(n) + " tensors");
      const fbs::Tensor& st = *tensors->Get(s);
      const std::string shard = "its shard " + std::to_string(r) + ", " + tensorName(st, s);
      if (st.dtype() != t.dtype())
        return dataLoss(where + " is " + fbs::EnumNameDType(t.dtype()) + " but " + shard +
                        " is " + fbs::EnumNameDType(st.dtype()));
      if (st.quant() != t.quant())
        return dataLoss(where + " has quantization " + fbs::EnumNameQuantKind(t.quant()) +
                        " but " + shard + " has " + fbs::EnumNameQuantKind(st.quant()));
      if (st.experts() != t.experts() || shapeRank(st) != shapeRank(t))
        return dataLoss(where + " and " + shard + " differ in experts or shape rank");
      if (st.tp_rank() != r)
        return dataLoss(where + ": " + shard + " says tp_rank " + std::to_string(st.tp_rank()));
    }
  }
  const int64_t vocab = meta.model() ? meta.model()->vocab_size() : 0;
  const auto* launches = plan->launches();
  for (uint32_t i = 0; launches && i < launches->size(); ++i) {
    const fbs::Launch& l = *launches->Get(i);
    const fbs::EmbedParams* p = l.kernel() == fbs::Kernel_Embed ? l.params_as_EmbedParams() : nullptr;
    if (p && p->rows_per_rank() > 0 && p->rows_per_rank() * tp < vocab)
      return dataLoss(file + ": plan.launches[" + std::to_string(i) + "] (Embed): " +
                      std::to_string(tp) + " ranks of " + std::to_string(p->rows_per_rank()) +
                      " rows do not cover the vocabulary of " + std::to_string(vocab));
  }
  return Status::ok();
}

uint32_t shardIndex(const artifact::Artifact& artifact, uint32_t index, int rank) {
  const fbs::Tensor& t = *artifact.meta()->tensors()->Get(index);
  return t.shards() ? t.shards()->Get(rank) : index;
}

}  // namespace ds

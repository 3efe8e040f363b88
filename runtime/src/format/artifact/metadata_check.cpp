// Flatbuffer verification and cross-reference checks of artifact metadata.
#include "artifact/metadata_check.h"

#include <cmath>

#include "artifact/artifact_info.h"
#include "artifact/format.h"
#include "artifact/launch_check.h"
#include "artifact/synthetic.h"

namespace ds::artifact {
namespace {

constexpr flatbuffers::uoffset_t kMaxDepth = 64;

Status bad(const std::string& file, const std::string& what) {
  return dataLoss(file + ": invalid artifact metadata: " + what);
}

bool indexIn(int64_t i, size_t n) { return i >= 0 && static_cast<uint64_t>(i) < n; }

template <typename T>
size_t count(const flatbuffers::Vector<T>* v) {
  return v ? v->size() : 0;
}

Status checkTensors(const std::string& file, const fb::Artifact& meta) {
  const size_t num_tensors = count(meta.tensors());
  const size_t num_segments = count(meta.segments());
  for (size_t i = 0; i < num_tensors; ++i) {
    const fb::Tensor* t = meta.tensors()->Get(static_cast<flatbuffers::uoffset_t>(i));
    const std::string where = "tensors[" + std::to_string(i) + "]" +
                              (t->name() ? " '" + t->name()->str() + "'" : std::string());
    if (!t->name() || t->name()->size() == 0) return bad(file, where + " has no name");
    const size_t elem = dtypeSize(t->dtype());
    if (elem == 0) {
      return bad(file, where + " has unknown dtype " + std::to_string(int(t->dtype())));
    }
    // Synthetic tensors (ds-compile --weights random) have no bytes in the file: the artifact
    // must say it holds synthetic weights, the segment must be kNoSegment and the fill finite.
    if (const fb::SyntheticFill* f = t->synthetic()) {
      if (!meta.synthetic_weights())
        return bad(file, where + " is synthetic but the artifact does not hold synthetic weights");
      if (t->segment() != kNoSegment)
        return bad(file, where + " is synthetic but names segment " + std::to_string(t->segment()) +
                             " (a synthetic tensor has none)");
      if (!std::isfinite(f->mean()) || !std::isfinite(f->std()) || f->std() < 0)
        return bad(file, where + " has a synthetic fill of mean " + std::to_string(f->mean()) +
                             " and std " + std::to_string(f->std()) + " (finite, std >= 0)");
    } else if (t->segment() >= num_segments) {
      return bad(file, where + " refers to segment " + std::to_string(t->segment()) + " of " +
                           std::to_string(num_segments));
    }
    uint64_t expected = 0;
    if (!tensorBytes(*t, &expected)) return bad(file, where + " has an invalid shape");
    if (expected != t->nbytes()) {
      return bad(file, where + " nbytes " + std::to_string(t->nbytes()) + " != shape x dtype " +
                           std::to_string(expected));
    }
    for (int ref : {t->qscale(), t->qzero()})
      if (ref >= static_cast<int>(num_tensors))
        return bad(file, where + " names quantization tensor " + std::to_string(ref) + " of " +
                             std::to_string(num_tensors));
    const uint64_t seg_size =
        t->synthetic() ? t->nbytes() : meta.segments()->Get(t->segment())->size();
    if (t->nbytes() > seg_size) {
      return bad(file, where + " nbytes " + std::to_string(t->nbytes()) + " exceeds segment " +
                           std::to_string(t->segment()) + " (" + std::to_string(seg_size) +
                           " bytes)");
    }
    if (t->scale() != -1 && !indexIn(t->scale(), num_tensors)) {
      return bad(file, where + " scale refers to tensor " + std::to_string(t->scale()));
    }
    const size_t rank = t->shape() ? t->shape()->size() : 0;
    if (t->experts() < 0 || (t->experts() > 0 && (rank != 3 || t->shape()->Get(0) != t->experts())))
      return bad(file, where + " has experts " + std::to_string(t->experts()) +
                           " but a shape of rank " + std::to_string(rank) +
                           " (stacked experts are [experts, rows, cols])");
    if (rank < 1 || rank > 3) return bad(file, where + " has a shape of rank " + std::to_string(rank));
    if (t->scale() != -1) {
      const fb::Tensor* s = meta.tensors()->Get(static_cast<flatbuffers::uoffset_t>(t->scale()));
      // Block scales: [ceil(rows / block_rows), ceil(cols / block_cols)] f32 values per expert.
      const int64_t br = t->block() && t->block()->size() == 2 ? t->block()->Get(0) : 0;
      const int64_t bc = t->block() && t->block()->size() == 2 ? t->block()->Get(1) : 0;
      if (br < 1 || bc < 1) return bad(file, where + " has a block scale without a [rows, cols] block");
      const int64_t rows = rank == 1 ? 1 : t->shape()->Get(rank - 2), cols = t->shape()->Get(rank - 1);
      const uint64_t need = static_cast<uint64_t>((rows + br - 1) / br) *
                            static_cast<uint64_t>((cols + bc - 1) / bc) *
                            static_cast<uint64_t>(t->experts() > 0 ? t->experts() : 1) * 4;
      if (s->dtype() != fb::DType_F32 || s->nbytes() < need)
        return bad(file, where + " has a block-scale tensor of " + std::to_string(s->nbytes()) +
                             " bytes, it needs " + std::to_string(need) + " (f32)");
    }
    if (t->quant() > fb::QuantKind_MAX)
      return bad(file, where + " has an unknown quantization kind");
    const bool grouped = t->quant() == fb::QuantKind_Int4Group || t->quant() == fb::QuantKind_Int6Group;
    if (grouped && (t->group_size() < 1 || t->group_size() > (1 << 20)))
      return bad(file, where + " has " + fb::EnumNameQuantKind(t->quant()) + " group size " +
                           std::to_string(t->group_size()));
    if ((t->dtype() == fb::DType_I6) != (t->quant() == fb::QuantKind_Int6Group) ||
        (t->quant() == fb::QuantKind_Int6Group && t->qzero() >= 0))
      return bad(file, where + " has dtype " + fb::EnumNameDType(t->dtype()) + " and quantization " +
                           fb::EnumNameQuantKind(t->quant()) +
                           (t->qzero() >= 0 ? " with zero points" : "") +
                           " (I6 codes are exactly the symmetric Int6Group encoding)");
    for (int ref : {t->qscale(), t->qzero()})
      if (ref >= 0 && meta.tensors()->Get(static_cast<flatbuffers::uoffset_t>(ref))->dtype() != fb::DType_F32)
        return bad(file, where + " names quantization tensor " + std::to_string(ref) +
                             ", which is not f32");
  }
  return Status::ok();
}

// allow_absent: -1 marks an absent optional slot (Launch.weights; the launch ABI check decides
// which slots may be absent).
Status checkIndices(const std::string& file, const std::string& where,
                    const flatbuffers::Vector<int32_t>* v, size_t n, const char* what,
                    bool allow_absent = false) {
  for (size_t j = 0; j < count(v); ++j) {
    const int32_t x = v->Get(static_cast<flatbuffers::uoffset_t>(j));
    if (!indexIn(x, n) && !(allow_absent && x == -1)) {
      return bad(file, where + " refers to " + what + " " + std::to_string(x) + " of " +
                           std::to_string(n));
    }
  }
  return Status::ok();
}

// The Verifier of this flatbuffers version aligns a vector's length, not its 8-byte elements:
// check the [long] vectors before anything reads them (a misaligned read is undefined).
// Alignment is relative to the buffer's start (the reader maps it 64-byte aligned).
Status checkAlignment(const std::string& file, const fb::Artifact& meta, const uint8_t* start) {
  auto aligned8 = [&](const flatbuffers::Vector<int64_t>* v) {
    return !v || v->size() == 0 || (reinterpret_cast<const uint8_t*>(v->Data()) - start) % alignof(int64_t) == 0;
  };
  for (size_t i = 0; i < count(meta.tensors()); ++i) {
    const fb::Tensor* t = meta.tensors()->Get(static_cast<flatbuffers::uoffset_t>(i));
    if (!aligned8(t->shape()) || !aligned8(t->block())) return bad(file, "tensors[" + std::to_string(i) + "] has a misaligned shape or block vector");
  }
  if (const fb::Plan* plan = meta.plan())
    for (size_t i = 0; i < count(plan->buffers()); ++i)
      if (!aligned8(plan->buffers()->Get(static_cast<flatbuffers::uoffset_t>(i))->cols()))
        return bad(file, "plan.buffers[" + std::to_string(i) + "] has a misaligned cols vector");
  return Status::ok();
}

// Model facts the runtime trusts: sizes positive and bounded, special ids inside the vocabulary.
Status checkModel(const std::string& file, const fb::Artifact& meta) {
  // A bare artifact (weights only, no plan) may lack model facts; a runnable one may not.
  const fb::ModelInfo* m = meta.model();
  const bool runnable = meta.plan() && meta.plan()->launches() && meta.plan()->launches()->size() > 0;
  if (!m) return runnable ? bad(file, "has a plan but no model info") : Status::ok();
  constexpr int64_t kMaxVocab = int64_t{1} << 30, kMaxContext = int64_t{1} << 30;
  if (m->vocab_size() < (runnable ? 1 : 0) || m->vocab_size() > kMaxVocab)
    return bad(file, "model.vocab_size " + std::to_string(m->vocab_size()) + " is outside [" +
                         (runnable ? "1" : "0") + ", 2^30]");
  if (m->max_position_embeddings() < 0 || m->max_position_embeddings() > kMaxContext)
    return bad(file, "model.max_position_embeddings " + std::to_string(m->max_position_embeddings()) +
                         " is outside [0, 2^30]");
  const std::pair<const char*, int64_t> dims[] = {{"hidden_size", m->hidden_size()},
                                                  {"num_layers", m->num_layers()},
                                                  {"num_attention_heads", m->num_attention_heads()},
                                                  {"num_key_value_heads", m->num_key_value_heads()},
                                                  {"head_dim", m->head_dim()}};
  for (const auto& [name, v] : dims)
    if (v < 0 || v > (int64_t{1} << 24))
      return bad(file, std::string("model.") + name + " " + std::to_string(v) + " is outside [0, 2^24]");
  if (const fb::CostFacts* c = meta.cost())
    for (double v : {c->device_bandwidth_gbs(), c->device_tflops()})
      if (!std::isfinite(v) || v < 0)
        return bad(file, "cost has a device figure of " + std::to_string(v) + " (finite, >= 0)");
  if (m->bos_token_id() < -1 || m->bos_token_id() >= m->vocab_size())
    return bad(file, "model.bos_token_id " + std::to_string(m->bos_token_id()) +
                         " is outside the vocabulary of " + std::to_string(m->vocab_size()));
  if (const auto* eos = m->eos_token_ids())
    for (int32_t id : *eos)
      if (id < 0 || id >= m->vocab_size())
        return bad(file, "model.eos_token_ids has " + std::to_string(id) +
                             ", outside the vocabulary of " + std::to_string(m->vocab_size()));
  return Status::ok();
}

// Generated code is checked as data before anything maps it: its segment, and every launch's
// reference to an object and to a symbol the object lists.
Status checkCode(const std::string& file, const fb::Artifact& meta) {
  const size_t num_code = count(meta.code());
  const size_t num_segments = count(meta.segments());
  for (size_t c = 0; c < num_code; ++c) {
    const fb::CodeObject* obj = meta.code()->Get(static_cast<flatbuffers::uoffset_t>(c));
    const std::string where = "code[" + std::to_string(c) + "]";
    if (obj->format() > fb::CodeFormat_MAX) return bad(file, where + " has an unknown format");
    if (obj->segment() >= num_segments || obj->size() == 0 ||
        obj->size() > meta.segments()->Get(obj->segment())->size())
      return bad(file, where + " names segment " + std::to_string(obj->segment()) + " of " +
                           std::to_string(num_segments) + " with " + std::to_string(obj->size()) +
                           " bytes of code, which the artifact lacks");
    // The CUDA kernel library: GPU code (a cubin for sm_XY or PTX for compute_XY), never host.
    if (obj->library()) {
      const std::string target = obj->target() ? obj->target()->str() : "";
      const bool gpu_name = target.rfind("sm_", 0) == 0 || target.rfind("compute_", 0) == 0;
      if (!gpu_name || (obj->format() != fb::CodeFormat_Cubin && obj->format() != fb::CodeFormat_Ptx))
        return bad(file, where + " is a CUDA kernel library object for target '" + target +
                             "' in format " + fb::EnumNameCodeFormat(obj->format()) +
                             " (a library object is a Cubin for sm_XY or Ptx for compute_XY)");
    }
  }
  auto isLibrary = [&](size_t object) {
    return meta.code()->Get(static_cast<flatbuffers::uoffset_t>(object))->library();
  };
  const fb::Plan* plan = meta.plan();
  if (!plan) return Status::ok();
  auto listed = [&](size_t object, const flatbuffers::String* name) {
    const auto* symbols = meta.code()->Get(static_cast<flatbuffers::uoffset_t>(object))->symbols();
    if (!symbols || !name) return false;
    for (const auto* s : *symbols)
      if (s && s->str() == name->str()) return true;
    return false;
  };
  for (size_t i = 0; i < count(plan->launches()); ++i) {
    const fb::Launch* l = plan->launches()->Get(static_cast<flatbuffers::uoffset_t>(i));
    const std::string where = "plan.launches[" + std::to_string(i) + "] (" +
                              fb::EnumNameKernel(l->kernel()) + ")";
    const int32_t obj = l->code_object();
    if (obj < -1 || obj >= static_cast<int32_t>(num_code))
      return bad(file, where + " names code object " + std::to_string(obj) + " of " + std::to_string(num_code));
    if ((obj >= 0) != (l->code_symbol() != nullptr))
      return bad(file, where + " has a code object without a code symbol or the reverse");
    // Library kernels are chosen by the device's kernel table, never named by a launch.
    if (obj >= 0 && isLibrary(static_cast<size_t>(obj)))
      return bad(file, where + " names code[" + std::to_string(obj) +
                           "], the CUDA kernel library; launches name generated code only");
    if (obj >= 0 && !listed(static_cast<size_t>(obj), l->code_symbol()))
      return bad(file, where + " calls '" + l->code_symbol()->str() + "', which code[" +
                           std::to_string(obj) + "] does not list among its symbols");
    if (const auto* eps = l->epilogue_symbols())
      for (const auto* e : *eps)
        if (num_code == 0 || isLibrary(0) || !listed(0, e))
          return bad(file, where + " has an epilogue '" + (e ? e->str() : std::string()) +
                               "' that code[0] does not list among its symbols");
  }
  return Status::ok();
}

Status checkPlan(const std::string& file, const fb::Artifact& meta) {
  const fb::Plan* plan = meta.plan();
  if (!plan) return Status::ok();
  const size_t num_buffers = count(plan->buffers());
  const size_t num_tensors = count(meta.tensors());
  for (size_t i = 0; i < num_buffers; ++i) {
    const fb::Buffer* b = plan->buffers()->Get(static_cast<flatbuffers::uoffset_t>(i));
    const std::string where = "plan.buffers[" + std::to_string(i) + "]";
    if (b->rows() > fb::RowSpace_MAX) return bad(file, where + " has an unknown row space");
    if (dtypeSize(b->dtype()) == 0) return bad(file, where + " has an unknown dtype");
    if (b->arena_offset() < -1)
      return bad(file, where + " has arena offset " + std::to_string(b->arena_offset()) +
                           " (-1: not in an arena)");
    if (b->alias_of() != -1 && !indexIn(b->alias_of(), num_buffers)) {
      return bad(file, where + " aliases buffer " + std::to_string(b->alias_of()));
    }
  }
  for (size_t i = 0; i < count(plan->launches()); ++i) {
    const fb::Launch* l = plan->launches()->Get(static_cast<flatbuffers::uoffset_t>(i));
    const std::string where = "plan.launches[" + std::to_string(i) + "]";
    if (l->kernel() > fb::Kernel_MAX) {
      return bad(file, where + " has unknown kernel " + std::to_string(int(l->kernel())));
    }
    DS_RETURN_IF_ERROR(checkIndices(file, where + ".inputs", l->inputs(), num_buffers, "buffer"));
    DS_RETURN_IF_ERROR(checkIndices(file, where + ".outputs", l->outputs(), num_buffers, "buffer"));
    DS_RETURN_IF_ERROR(checkIndices(file, where + ".weights", l->weights(), num_tensors, "tensor",
                                    /*allow_absent=*/true));
  }
  // -1 marks an entry point the plan does not have (e.g. no logit_rows buffer).
  const std::pair<const char*, int32_t> entries[] = {{"token_ids", plan->token_ids()},
                                                     {"positions", plan->positions()},
                                                     {"logit_rows", plan->logit_rows()},
                                                     {"logits", plan->logits()}};
  for (const auto& [name, id] : entries) {
    if (id != -1 && num_buffers > 0 && !indexIn(id, num_buffers)) {
      return bad(file, std::string("plan.") + name + " refers to buffer " + std::to_string(id) +
                           " of " + std::to_string(num_buffers));
    }
  }
  if (const fb::KVCacheSpec* kv = plan->kv_cache()) {
    if (kv->kind() > fb::KVKind_MAX) return bad(file, "plan.kv_cache has an unknown kind");
    if (kv->kind() != fb::KVKind_None && dtypeSize(kv->dtype()) == 0) {
      return bad(file, "plan.kv_cache has an unknown dtype");
    }
  }
  return checkLaunches(file, meta);
}

}  // namespace

Status verifyMetadataBuffer(const std::string& file, const uint8_t* data, size_t size,
                            const fb::Artifact** out) {
  if (size < 8 || size >= FLATBUFFERS_MAX_BUFFER_SIZE) {
    return bad(file, "metadata size " + std::to_string(size) + " is not a valid flatbuffer size");
  }
  if (!fb::ArtifactBufferHasIdentifier(data)) {
    return bad(file, "metadata lacks the file identifier \"" +
                         std::string(fb::ArtifactIdentifier()) + "\"");
  }
  // The Verifier's default budget of 1M tables is too small for a big model's tensor table and
  // plan; the byte size already bounds the work, so allow as many tables as could fit.
  const auto max_tables = static_cast<flatbuffers::uoffset_t>(size / 4 + 1);
  flatbuffers::Verifier verifier(data, size, kMaxDepth, max_tables);
  if (!fb::VerifyArtifactBuffer(verifier)) {
    return bad(file, "the flatbuffer Verifier rejected the metadata");
  }
  const fb::Artifact* meta = fb::GetArtifact(data);
  DS_RETURN_IF_ERROR(checkAlignment(file, *meta, data));
  if (meta->schema_version() != kSchemaVersion) {
    return bad(file, "metadata schema_version " + std::to_string(meta->schema_version()) +
                         ", expected " + std::to_string(kSchemaVersion) + " (ds::artifact::kSchemaVersion)");
  }
  *out = meta;
  return Status::ok();
}

Status checkReferences(const std::string& file, const fb::Artifact& meta) {
  DS_RETURN_IF_ERROR(checkModel(file, meta));
  DS_RETURN_IF_ERROR(checkTensors(file, meta));
  DS_RETURN_IF_ERROR(checkCode(file, meta));
  return checkPlan(file, meta);
}

}  // namespace ds::artifact

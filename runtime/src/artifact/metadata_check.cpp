// Flatbuffer verification and cross-reference checks of artifact metadata.
#include "artifact/metadata_check.h"

#include "artifact/artifact_info.h"
#include "artifact/format.h"
#include "artifact/launch_check.h"

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
    if (t->segment() >= num_segments) {
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
    const uint64_t seg_size = meta.segments()->Get(t->segment())->size();
    if (t->nbytes() > seg_size) {
      return bad(file, where + " nbytes " + std::to_string(t->nbytes()) + " exceeds segment " +
                           std::to_string(t->segment()) + " (" + std::to_string(seg_size) +
                           " bytes)");
    }
    if (t->scale() != -1 && !indexIn(t->scale(), num_tensors)) {
      return bad(file, where + " scale refers to tensor " + std::to_string(t->scale()));
    }
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
  if (meta->schema_version() != kSchemaVersion) {
    return bad(file, "metadata schema_version " + std::to_string(meta->schema_version()) +
                         ", expected " + std::to_string(kSchemaVersion) + " (ds::artifact::kSchemaVersion)");
  }
  *out = meta;
  return Status::ok();
}

Status checkReferences(const std::string& file, const fb::Artifact& meta) {
  DS_RETURN_IF_ERROR(checkTensors(file, meta));
  return checkPlan(file, meta);
}

}  // namespace ds::artifact

// Dtype sizes, KV bytes per token and weight totals computed from artifact metadata.
#include "artifact/artifact_info.h"

namespace ds::artifact {

size_t dtypeSize(fb::DType dtype) {
  switch (dtype) {
    case fb::DType_F32: return 4;
    case fb::DType_F16: return 2;
    case fb::DType_BF16: return 2;
    case fb::DType_F8_E4M3: return 1;
    case fb::DType_I8: return 1;
    case fb::DType_I32: return 4;
    case fb::DType_I4: return 1;  // two per byte, each row padded to a byte: see tensorBytes
    case fb::DType_I6: return 1;  // four per three bytes, rows padded to a quad: see tensorBytes
  }
  return 0;
}

bool tensorBytes(const fb::Tensor& t, uint64_t* out) {
  uint64_t elements = 0;
  if (!shapeElements(t.shape(), &elements)) return false;
  if (t.dtype() != fb::DType_I4 && t.dtype() != fb::DType_I6) {
    const uint64_t elem = dtypeSize(t.dtype());
    if (elem == 0 || elements > UINT64_MAX / elem) return false;
    *out = elements * elem;
    return true;
  }
  if (!t.shape() || t.shape()->size() == 0) return false;
  const uint64_t cols = static_cast<uint64_t>(t.shape()->Get(t.shape()->size() - 1));
  const uint64_t rows = cols ? elements / cols : 0;
  *out = rows * (t.dtype() == fb::DType_I4 ? (cols + 1) / 2 : 3 * ((cols + 3) / 4));
  return true;
}

bool shapeElements(const flatbuffers::Vector<int64_t>* shape, uint64_t* out) {
  uint64_t n = 1;
  if (shape) {
    for (int64_t d : *shape) {
      if (d < 0) return false;
      const uint64_t u = static_cast<uint64_t>(d);
      if (u != 0 && n > UINT64_MAX / u) return false;
      n *= u;
    }
  }
  *out = n;
  return true;
}

static uint64_t nonNegative(int64_t v) { return v > 0 ? static_cast<uint64_t>(v) : 0; }

uint64_t kvBytesPerSlot(const fb::KVCacheSpec& spec) {
  const uint64_t elem = dtypeSize(spec.dtype());
  // Quantized caches (one byte per element) keep one f32 scale per written vector.
  const bool scaled = elem == 1;
  switch (spec.kind()) {
    case fb::KVKind_GQA: {
      const uint64_t heads = nonNegative(spec.kv_heads());
      const uint64_t k = nonNegative(spec.head_dim()), v = nonNegative(spec.v_dim());
      return heads * (k + v) * elem + (scaled ? heads * 2 * sizeof(float) : 0);
    }
    case fb::KVKind_MLA:
      return (nonNegative(spec.rank()) + nonNegative(spec.rope_dim())) * elem +
             (scaled ? 2 * sizeof(float) : 0);
    default:
      return 0;
  }
}

uint64_t kvBytesPerBlock(const fb::KVCacheSpec& spec) {
  return kvBytesPerSlot(spec) * nonNegative(spec.block_size()) * nonNegative(spec.num_layers());
}

uint64_t kvBytesPerToken(const fb::KVCacheSpec& spec) {
  return kvBytesPerSlot(spec) * nonNegative(spec.num_layers());
}

uint64_t weightBytes(const fb::Artifact& meta) {
  uint64_t total = 0;
  if (meta.segments()) {
    for (const fb::Segment* s : *meta.segments()) total += s->size();
    // The CUDA kernel library a GPU artifact embeds is code, not weights (~0.6 MB per build).
    if (meta.code())
      for (const fb::CodeObject* c : *meta.code())
        if (c->library() && c->segment() < meta.segments()->size())
          total -= meta.segments()->Get(c->segment())->size();
  }
  // Synthetic tensors take their bytes once filled at load, like a segment once mapped.
  if (meta.tensors()) {
    for (const fb::Tensor* t : *meta.tensors())
      if (t->synthetic()) total += t->nbytes();
  }
  return total;
}

}  // namespace ds::artifact

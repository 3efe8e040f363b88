// KV cache storage helpers: bytes per block, carving one buffer into the cache arrays, reading a slot back.
#include "cpu/internal.h"

namespace ds::cpu {
namespace {

int64_t elemBytes(KVType t) { return t == KVType::F32 ? 4 : 1; }

}  // namespace

int64_t kvBlockBytes(KVType type, int64_t block_size, int64_t kv_heads, int64_t head_dim,
                     int64_t v_dim) {
  const int64_t per_slot = kv_heads * (head_dim + v_dim) * elemBytes(type) +
                           (type == KVType::F32 ? 0 : kv_heads * 2 * 4);
  return block_size * per_slot;
}

void kvBindBuffer(PagedKV& c, void* base) {
  const int64_t slots = c.num_blocks * c.block_size, H = c.kv_heads;
  auto* p = static_cast<uint8_t*>(base);
  if (c.type == KVType::F32) {
    c.k = reinterpret_cast<float*>(p);
    c.v = c.k + slots * H * c.head_dim;
    return;
  }
  // Scales first so they stay 4-byte aligned whatever the byte arrays' lengths.
  c.k_scale = reinterpret_cast<float*>(p);
  c.v_scale = c.k_scale + slots * H;
  c.kq = reinterpret_cast<uint8_t*>(c.v_scale + slots * H);
  c.vq = c.kq + slots * H * c.head_dim;
}

void kvReadSlot(const PagedKV& c, int64_t slot, float* k, float* v) {
  const int64_t H = c.kv_heads, D = c.head_dim, Dv = c.v_dim;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t i = kvIndex(c, slot, h);
    if (c.type == KVType::F32) {
      std::memcpy(k + h * D, c.k + i * D, D * sizeof(float));
      std::memcpy(v + h * Dv, c.v + i * Dv, Dv * sizeof(float));
      continue;
    }
    detail::dequantVec(c.type, c.kq + i * D, D, c.k_scale[i], k + h * D);
    detail::dequantVec(c.type, c.vq + i * Dv, Dv, c.v_scale[i], v + h * Dv);
  }
}

int64_t mlaBlockBytes(KVType type, int64_t block_size, int64_t rank, int64_t rope_dim) {
  return block_size * ((rank + rope_dim) * elemBytes(type) + (type == KVType::F32 ? 0 : 2 * 4));
}

void mlaBindBuffer(PagedLatentKV& c, void* base) {
  if (c.type == KVType::F32) {
    c.data = static_cast<float*>(base);
    return;
  }
  c.scales = static_cast<float*>(base);
  c.qdata = reinterpret_cast<uint8_t*>(c.scales + c.num_blocks * c.block_size * 2);
}

void mlaKvReadSlot(const PagedLatentKV& c, int64_t slot, float* c_kv, float* k_rope) {
  const int64_t R = c.rank, Dr = c.rope_dim, L = R + Dr;
  if (c.type == KVType::F32) {
    std::memcpy(c_kv, c.data + slot * L, R * sizeof(float));
    std::memcpy(k_rope, c.data + slot * L + R, Dr * sizeof(float));
    return;
  }
  detail::dequantVec(c.type, c.qdata + slot * L, R, c.scales[slot * 2], c_kv);
  detail::dequantVec(c.type, c.qdata + slot * L + R, Dr, c.scales[slot * 2 + 1], k_rope);
}

}  // namespace ds::cpu

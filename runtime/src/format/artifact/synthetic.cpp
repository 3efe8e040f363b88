// The synthetic-weight fill: splitmix64 counters -> Irwin-Hall normals -> the tensor's dtype.
#include "artifact/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "artifact/artifact_info.h"
#include "format/dtype.h"

namespace ds::artifact {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

__attribute__((always_inline)) inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// One key per (seed, stream): streams of one seed and seeds of one stream never share counters.
inline uint64_t streamKey(uint64_t seed, uint64_t stream) {
  return mix64(mix64(seed ^ 0x5DEECE66Dull) + stream * kGolden);
}

// Sum of four uniform 16-bit fields: mean 2 * 65535, variance 4 * (65536^2 - 1) / 12.
__attribute__((always_inline)) inline float normalFromKey(uint64_t key, uint64_t index) {
  const uint64_t h = mix64(key + (index + 1) * kGolden);
  const int32_t sum = static_cast<int32_t>((h & 0xFFFF) + ((h >> 16) & 0xFFFF) +
                                           ((h >> 32) & 0xFFFF) + (h >> 48));
  constexpr float kScale = 1.7320508f / 65536.0f;  // sqrt(12 / 4) / 65536
  return static_cast<float>(sum - 2 * 65535) * kScale;
}

// Always inlined: the loop must be compiled inside each target clone of fillSyntheticRange.
template <typename Encode>
__attribute__((always_inline)) inline void fillWith(uint64_t key, float mean, float std, uint64_t first, uint64_t count, Encode encode) {
  for (uint64_t i = 0; i < count; ++i) encode(i, mean + std * normalFromKey(key, first + i));
}

}  // namespace

float syntheticNormal(uint64_t seed, uint64_t stream, uint64_t index) {
  return normalFromKey(streamKey(seed, stream), index);
}

SyntheticSpec syntheticSpec(const fb::Tensor& t) {
  SyntheticSpec s;
  s.dtype = t.dtype();
  if (const fb::SyntheticFill* f = t.synthetic()) {
    s.mean = f->mean();
    s.std = f->std();
    s.stream = f->stream();
  }
  return s;
}

// Compiled for AVX-512 too (64-bit multiplies in vectors: 3x the generic build's GB/s on this
// machine) and picked at run time by the CPU; the values are the same on every path.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void fillSyntheticRange(const SyntheticSpec& spec, uint64_t seed, uint64_t first, uint64_t count,
                        uint8_t* dst) {
  const uint64_t key = streamKey(seed, spec.stream);
  const float m = spec.mean, sd = spec.std;
  switch (spec.dtype) {
    case fb::DType_F32: {
      float* out = reinterpret_cast<float*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { out[i] = v; });
      break;
    }
    case fb::DType_BF16: {
      // Round to nearest even inline (values are finite): the loop vectorizes.
      uint16_t* out = reinterpret_cast<uint16_t*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) {
        uint32_t b;
        std::memcpy(&b, &v, 4);
        out[i] = static_cast<uint16_t>((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
      });
      break;
    }
    case fb::DType_F16: {
      uint16_t* out = reinterpret_cast<uint16_t*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { out[i] = floatToHalf(v); });
      break;
    }
    case fb::DType_F8_E4M3:
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) {
        dst[i] = floatToFp8E4M3(std::clamp(v, -448.0f, 448.0f));
      });
      break;
    case fb::DType_I8:
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) {
        dst[i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(std::nearbyint(v), -127.0f, 127.0f)));
      });
      break;
    case fb::DType_I32: {
      int32_t* out = reinterpret_cast<int32_t*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) {
        out[i] = static_cast<int32_t>(std::clamp(std::nearbyint(v), -2147483520.0f, 2147483520.0f));
      });
      break;
    }
    default:  // I4 goes through fillSyntheticTensor's row loop; unknown dtypes are refused earlier
      std::memset(dst, 0, count);
      break;
  }
}

void fillSyntheticTensor(const SyntheticSpec& spec, uint64_t seed,
                         const std::vector<int64_t>& shape, uint8_t* dst, uint64_t nbytes,
                         unsigned threads) {
  const bool int4 = spec.dtype == fb::DType_I4;
  const uint64_t cols = shape.empty() ? 1 : static_cast<uint64_t>(shape.back());
  const uint64_t esize = std::max<size_t>(1, dtypeSize(spec.dtype));
  // Work items: elements (rows for I4), split into contiguous ranges of at least 1 MiB.
  const uint64_t rowBytes = int4 ? (cols + 1) / 2 : 0;
  const uint64_t items = int4 ? (rowBytes ? nbytes / rowBytes : 0) : nbytes / esize;
  const uint64_t itemBytes = int4 ? rowBytes : esize;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const uint64_t minItems = std::max<uint64_t>(1, (uint64_t{1} << 20) / std::max<uint64_t>(itemBytes, 1));
  const unsigned n = static_cast<unsigned>(
      std::max<uint64_t>(1, std::min<uint64_t>(threads, (items + minItems - 1) / minItems)));
  auto work = [&](uint64_t begin, uint64_t end) {
    if (!int4) {
      fillSyntheticRange(spec, seed, begin, end - begin, dst + begin * esize);
      return;
    }
    const uint64_t key = streamKey(seed, spec.stream);
    for (uint64_t r = begin; r < end; ++r) {
      uint8_t* row = dst + r * rowBytes;
      std::memset(row, 0, rowBytes);
      for (uint64_t c = 0; c < cols; ++c) {
        const float v = spec.mean + spec.std * normalFromKey(key, r * cols + c);
        const auto code = static_cast<uint8_t>(std::clamp(std::nearbyint(v), 0.0f, 15.0f));
        row[c / 2] |= static_cast<uint8_t>(code << (4 * (c % 2)));
      }
    }
  };
  // Bytes past the last whole item (none for a consistent tensor) are zeroed, not left unset.
  if (items * itemBytes < nbytes) std::memset(dst + items * itemBytes, 0, nbytes - items * itemBytes);
  if (n == 1) {
    work(0, items);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(n);
  for (unsigned t = 0; t < n; ++t)
    pool.emplace_back(work, items * t / n, items * (t + 1) / n);
  for (std::thread& th : pool) th.join();
}

}  // namespace ds::artifact

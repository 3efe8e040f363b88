// The synthetic-weight fill: splitmix64 counters -> Irwin-Hall normals -> the tensor's dtype.
#include "artifact/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "artifact/artifact_info.h"
#include "artifact/synthetic_element.h"

namespace ds::artifact {
namespace {

// Always inlined: the loop must be compiled inside each target clone of fillSyntheticRange. The
// element is synth::value (synthetic_element.h, shared with the CUDA fill kernel).
template <typename Encode>
__attribute__((always_inline)) inline void fillWith(uint64_t key, float mean, float std, uint64_t first, uint64_t count, Encode encode) {
  for (uint64_t i = 0; i < count; ++i) encode(i, synth::value(key, first + i, mean, std));
}

}  // namespace

float syntheticNormal(uint64_t seed, uint64_t stream, uint64_t index) {
  return synth::normal(synth::streamKey(seed, stream), index);
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
  const uint64_t key = synth::streamKey(seed, spec.stream);
  const float m = spec.mean, sd = spec.std;
  switch (spec.dtype) {
    case fb::DType_F32: {
      float* out = reinterpret_cast<float*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { out[i] = v; });
      break;
    }
    case fb::DType_BF16: {
      uint16_t* out = reinterpret_cast<uint16_t*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { out[i] = synth::toBF16(v); });
      break;
    }
    case fb::DType_F16: {
      uint16_t* out = reinterpret_cast<uint16_t*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { out[i] = synth::toF16(v); });
      break;
    }
    case fb::DType_F8_E4M3:
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) {
        dst[i] = synth::toF8E4M3(synth::clampTo(v, -448.0f, 448.0f));
      });
      break;
    case fb::DType_I8:
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { dst[i] = synth::toI8(v); });
      break;
    case fb::DType_I32: {
      int32_t* out = reinterpret_cast<int32_t*>(dst);
      fillWith(key, m, sd, first, count, [&](uint64_t i, float v) { out[i] = synth::toI32(v); });
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
    const uint64_t key = synth::streamKey(seed, spec.stream);
    for (uint64_t b = begin * rowBytes; b < end * rowBytes; ++b)
      dst[b] = synth::i4Byte(key, spec.mean, spec.std, cols, b);
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

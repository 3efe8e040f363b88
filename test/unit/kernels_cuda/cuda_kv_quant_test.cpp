// The GPU's quantize-on-write of int8 / FP8 GQA KV caches (kernels/cuda/include/ds_cuda_kv_quant.h,
// compiled here by the host compiler as nvcc compiles it into ds_kv_write_{i8,fp8}_*) against the
// host's kvWrite (kernels/cpu): the same codes and scales bit for bit, both in the header's serial
// form and in the kernel's order (lane-strided absmax, one candidate per lane, xor-butterfly
// reduction of (error, candidate)). Host only.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "cpu/cpu_kernels.h"
#include "cpu/quantize.h"
#include "ds_cuda_kv_quant.h"

namespace {

namespace cpu = ds::cpu;

struct Quantized {
  std::vector<uint8_t> codes;
  float scale = 0.0f;
};

// The host's kvWrite of one K vector x (one slot, one kv head); V gets the same vector.
Quantized hostWrite(bool fp8, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  cpu::PagedKV c;
  c.num_blocks = 1;
  c.block_size = 1;
  c.kv_heads = 1;
  c.head_dim = c.v_dim = n;
  c.type = fp8 ? cpu::KVType::F8E4M3 : cpu::KVType::I8;
  std::vector<uint8_t> buf(static_cast<size_t>(cpu::kvBlockBytes(c.type, 1, 1, n, n)));
  cpu::kvBindBuffer(c, buf.data());
  const int32_t pos = 0, seq = 0, table = 0;
  cpu::BatchView b;
  b.num_tokens = 1;
  b.positions = &pos;
  b.token_seq = &seq;
  b.num_seqs = 1;
  b.block_table = &table;
  b.max_blocks_per_seq = 1;
  cpu::kvWrite(c, b, x.data(), x.data());
  Quantized q;
  q.codes.assign(c.kq, c.kq + n);
  q.scale = c.k_scale[0];
  EXPECT_EQ(std::memcmp(c.kq, c.vq, static_cast<size_t>(n)), 0);
  return q;
}

// ds_kv_write_{i8,fp8}'s order for one vector (src/attention_kvq.cu quantizeWarp): lane l takes
// elements l, l + 32, ...; the absmax and the (error, candidate) pairs meet in xor butterflies;
// lane k < 19 computes candidate k's error serially over the whole vector.
Quantized warpOrder(bool fp8, const std::vector<float>& x) {
  const int n = static_cast<int>(x.size());
  float m[32];
  for (int l = 0; l < 32; ++l) {
    m[l] = 0.0f;
    for (int i = l; i < n; i += 32) m[l] = ds_kvq::absMaxStep(m[l], x[i]);
  }
  for (int o = 16; o > 0; o >>= 1) {
    float nm[32];
    for (int l = 0; l < 32; ++l) nm[l] = fmaxf(m[l], m[l ^ o]);
    std::memcpy(m, nm, sizeof m);
  }
  Quantized q;
  q.codes.resize(x.size());
  if (!fp8) {
    q.scale = ds_kvq::scaleI8(m[0]);
    for (int i = 0; i < n; ++i) q.codes[i] = static_cast<uint8_t>(ds_kvq::codeI8(x[i], q.scale));
    return q;
  }
  const float base = ds_kvq::fp8Base(m[0]);
  double e[32];
  int k[32];
  for (int l = 0; l < 32; ++l) {
    k[l] = l;
    e[l] = std::numeric_limits<double>::infinity();
    if (l >= ds_kvq::kFp8Candidates) continue;
    const float s = ds_kvq::fp8Candidate(base, l);
    e[l] = 0.0;
    for (int i = 0; i < n; ++i) e[l] = ds_kvq::fp8ErrStep(e[l], x[i], s);
  }
  for (int o = 16; o > 0; o >>= 1) {
    double ne[32];
    int nk[32];
    for (int l = 0; l < 32; ++l) {
      ne[l] = e[l], nk[l] = k[l];
      ds_kvq::fp8Keep(ne[l], nk[l], e[l ^ o], k[l ^ o]);
    }
    std::memcpy(e, ne, sizeof e);
    std::memcpy(k, nk, sizeof k);
  }
  for (int l = 1; l < 32; ++l) EXPECT_EQ(k[l], k[0]) << "every lane agrees";
  q.scale = ds_kvq::fp8Candidate(base, k[0]);
  for (int i = 0; i < n; ++i) q.codes[i] = ds_kvq::encodeFp8(ds_kvq::divF(x[i], q.scale));
  return q;
}

uint32_t bits(float v) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

void expectSame(const Quantized& host, const Quantized& gpu, const char* what) {
  EXPECT_EQ(bits(host.scale), bits(gpu.scale)) << what << ": scale " << host.scale << " vs " << gpu.scale;
  EXPECT_EQ(host.codes, gpu.codes) << what;
}

// Vectors the search must get right: uniform, one outlier, a few large values, tiny (subnormal
// scales), huge, zeros, constant, NaN and infinity, bf16-rounded values (what bf16 activations
// give), and exact ties of candidate errors (+-1 vectors, powers of two).
std::vector<std::vector<float>> testVectors(int n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<std::vector<float>> out;
  auto make = [&](auto f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) v[i] = f(i);
    out.push_back(v);
  };
  for (int r = 0; r < 40; ++r) make([&](int) { return u(rng); });
  for (int r = 0; r < 40; ++r) make([&](int) { return g(rng) * 3.0f; });
  for (int r = 0; r < 10; ++r) make([&](int i) { return i == r % n ? 40.0f : g(rng); });
  for (int r = 0; r < 10; ++r) make([&](int) {  // bf16-rounded
    const float v = g(rng);
    uint32_t b = bits(v);
    b = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  });
  make([&](int) { return u(rng) * 1e-42f; });
  make([&](int) { return u(rng) * 1e-30f; });
  make([&](int) { return u(rng) * 3e38f; });
  make([&](int) { return 0.0f; });
  make([&](int) { return -0.0f; });
  make([&](int) { return 0.75f; });
  make([&](int i) { return i % 2 ? 1.0f : -1.0f; });
  make([&](int i) { return std::ldexp(1.0f, i % 9 - 4); });
  make([&](int i) { return i == 0 ? std::numeric_limits<float>::quiet_NaN() : u(rng); });
  make([&](int i) { return i == n - 1 ? std::numeric_limits<float>::infinity() : u(rng); });
  make([&](int i) { return i % 3 == 0 ? -std::numeric_limits<float>::infinity() : u(rng); });
  return out;
}

class KVQuant : public ::testing::TestWithParam<bool> {};  // fp8?

TEST_P(KVQuant, GpuDefinitionIsTheHostsBitForBit) {
  const bool fp8 = GetParam();
  std::mt19937 rng(fp8 ? 7 : 11);
  int checked = 0;
  for (int n : {1, 3, 8, 31, 64, 100, 128, 256}) {
    for (const std::vector<float>& x : testVectors(n, rng)) {
      SCOPED_TRACE("n " + std::to_string(n) + " vector " + std::to_string(checked));
      const Quantized host = hostWrite(fp8, x);
      Quantized serial;
      serial.codes.resize(x.size());
      serial.scale = ds_kvq::quantizeVec(fp8, x.data(), n, serial.codes.data());
      expectSame(host, serial, "serial");
      expectSame(host, warpOrder(fp8, x), "warp order");
      ++checked;
      if (::testing::Test::HasFailure()) return;
    }
  }
  EXPECT_GT(checked, 800);
}

INSTANTIATE_TEST_SUITE_P(Types, KVQuant, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? std::string("fp8") : std::string("int8"); });

// MLA's latent cache (ds_mla_kv_write_{i8,fp8}_a*, src/mla.cu): the host's mlaKvWrite gives each
// slot's c_kv (rank 512) and k_rope (rope 64) one scale each; ds_mla_kv_write_fp8 quantizes each
// part with one warp in the GQA writers' order (kv_quant_warp.cuh). Codes: [c_kv | k_rope] per
// slot, scales [c_kv, k_rope] per slot, bit for bit. (The int8 writer's absmax is order-free.)
TEST_P(KVQuant, MlaLatentWriteIsTheHostsBitForBit) {
  const bool fp8 = GetParam();
  std::mt19937 rng(fp8 ? 5 : 13);
  int checked = 0;
  for (auto [R, Dr] : {std::pair{512, 64}, std::pair{32, 16}, std::pair{100, 7}}) {
    const std::vector<std::vector<float>> cs = testVectors(R, rng), ks = testVectors(Dr, rng);
    ASSERT_EQ(cs.size(), ks.size());
    for (size_t v = 0; v < cs.size(); ++v) {
      SCOPED_TRACE("rank " + std::to_string(R) + " rope " + std::to_string(Dr) + " vector " + std::to_string(v));
      cpu::PagedLatentKV c;
      c.num_blocks = 1;
      c.block_size = 1;
      c.rank = R;
      c.rope_dim = Dr;
      c.type = fp8 ? cpu::KVType::F8E4M3 : cpu::KVType::I8;
      std::vector<uint8_t> buf(static_cast<size_t>(cpu::mlaBlockBytes(c.type, 1, R, Dr)));
      cpu::mlaBindBuffer(c, buf.data());
      const int32_t pos = 0, seq = 0, table = 0;
      cpu::BatchView b;
      b.num_tokens = 1;
      b.positions = &pos;
      b.token_seq = &seq;
      b.num_seqs = 1;
      b.block_table = &table;
      b.max_blocks_per_seq = 1;
      cpu::mlaKvWrite(c, b, cs[v].data(), ks[v].data());
      Quantized hc, hk;
      hc.codes.assign(c.qdata, c.qdata + R);
      hk.codes.assign(c.qdata + R, c.qdata + R + Dr);
      hc.scale = c.scales[0];
      hk.scale = c.scales[1];
      // The layout the GPU writes: scales [slots, 2] first, then codes [slots, rank + rope].
      EXPECT_EQ(reinterpret_cast<uint8_t*>(c.scales), buf.data());
      EXPECT_EQ(c.qdata, buf.data() + 8);
      expectSame(hc, warpOrder(fp8, cs[v]), "c_kv");
      expectSame(hk, warpOrder(fp8, ks[v]), "k_rope");
      ++checked;
      if (::testing::Test::HasFailure()) return;
    }
  }
  EXPECT_GT(checked, 300);
}

// The candidate factors are the host's: std::exp2(float(j) / 16), j = -2..16 without 0, in order.
TEST(KVQuantFp8, FactorsAreTheHosts) {
  int k = 1;
  EXPECT_EQ(ds_kvq::kFp8Factors[0], 1.0f);
  for (int j = -2; j <= 16; ++j) {
    if (j == 0) continue;
    EXPECT_EQ(bits(ds_kvq::kFp8Factors[k]), bits(std::exp2(static_cast<float>(j) / 16.0f))) << j;
    ++k;
  }
  EXPECT_EQ(k, ds_kvq::kFp8Candidates);
}

// The E4M3 encoder and decoder are the host's on every code and on f32 values around every code
// boundary (ties included), the saturation range, subnormals, NaN and infinities.
TEST(KVQuantFp8, CodecIsTheHosts) {
  for (int c = 0; c < 256; ++c) {
    const float host = cpu::fp8E4M3ToF32(static_cast<uint8_t>(c)), gpu = ds_kvq::decodeFp8(static_cast<uint8_t>(c));
    if (std::isnan(host)) {
      EXPECT_TRUE(std::isnan(gpu)) << c;
      EXPECT_EQ(std::signbit(host), std::signbit(gpu)) << c;
    } else {
      EXPECT_EQ(bits(host), bits(gpu)) << c;
    }
  }
  std::mt19937 rng(3);
  std::vector<float> xs = {0.0f, -0.0f, 448.0f, 449.0f, 464.0f, 480.0f, 1e30f, 0x1p-6f, 0x1p-7f, 0x1p-10f,
                           0x1p-11f, 3 * 0x1p-11f, std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::denorm_min()};
  for (int c = 0; c < 127; ++c) {  // each code, its neighbours and the midpoints between codes
    const float a = cpu::fp8E4M3ToF32(static_cast<uint8_t>(c)), b = cpu::fp8E4M3ToF32(static_cast<uint8_t>(c + 1));
    for (float v : {a, b, (a + b) / 2, std::nextafter((a + b) / 2, 0.0f), std::nextafter((a + b) / 2, 1e9f)})
      xs.push_back(v);
  }
  std::uniform_int_distribution<uint32_t> any;
  for (int i = 0; i < 1 << 20; ++i) {
    uint32_t b = any(rng);
    float f;
    std::memcpy(&f, &b, 4);
    xs.push_back(f);
    if (std::isnormal(f)) xs.push_back(std::ldexp(f, -std::ilogb(f) + static_cast<int>(b % 24) - 12));  // near [2^-12, 2^12)
  }
  for (float x : xs) {
    ASSERT_EQ(cpu::f32ToFp8E4M3(x), ds_kvq::encodeFp8(x)) << x;
    ASSERT_EQ(cpu::f32ToFp8E4M3(-x), ds_kvq::encodeFp8(-x)) << -x;
  }
}

}  // namespace

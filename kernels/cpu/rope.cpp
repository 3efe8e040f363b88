// Rotary embedding: HF inverse frequencies for default/linear/llama3/yarn and the rotation itself.
#include <cmath>

#include "cpu/internal.h"

namespace ds::cpu {
namespace {

constexpr double kPi = 3.14159265358979323846;

// torch: base ** (arange(0, dim, 2).float() / dim), all in f32.
float basePow(double theta, int64_t i, int64_t dim) {
  const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
  return static_cast<float>(std::pow(static_cast<double>(static_cast<float>(theta)), double(e)));
}

// modeling_rope_utils._compute_yarn_parameters.find_correction_dim.
double correctionDim(double rotations, int64_t dim, double base, double max_pos) {
  return (double(dim) * std::log(max_pos / (rotations * 2 * kPi))) / (2 * std::log(base));
}

}  // namespace

double yarnGetMscale(double scale, double mscale) {
  if (scale <= 1) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

float mlaSoftmaxScale(const RopeParams& p, int64_t qk_head_dim) {
  double scale = std::pow(double(qk_head_dim), -0.5);
  if (p.scaling != RopeScaling::None && p.mscale_all_dim != 0.0) {
    const double m = yarnGetMscale(p.factor, p.mscale_all_dim);
    scale = scale * m * m;
  }
  return static_cast<float>(scale);
}

RopeTable::RopeTable(const RopeParams& p) : p_(p) {
  const int64_t dim = p.dim, half = dim / 2;
  inv_freq_.resize(half);
  const float factor = static_cast<float>(p.factor);
  switch (p.scaling) {
    case RopeScaling::None:
    case RopeScaling::Linear:
      for (int64_t i = 0; i < half; ++i) {
        inv_freq_[i] = 1.0f / basePow(p.theta, i, dim);
        if (p.scaling == RopeScaling::Linear) inv_freq_[i] /= factor;
      }
      break;
    case RopeScaling::Llama3: {
      const double old_ctx = double(p.original_max_position);
      const float low_wavelen = static_cast<float>(old_ctx / p.low_freq_factor);
      const float high_wavelen = static_cast<float>(old_ctx / p.high_freq_factor);
      for (int64_t i = 0; i < half; ++i) {
        const float inv = 1.0f / basePow(p.theta, i, dim);
        const float wavelen = static_cast<float>(2 * kPi) / inv;
        float llama = wavelen > low_wavelen ? inv / factor : inv;
        const float smooth =
            (static_cast<float>(old_ctx) / wavelen - static_cast<float>(p.low_freq_factor)) /
            static_cast<float>(p.high_freq_factor - p.low_freq_factor);
        const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;
        const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
        inv_freq_[i] = medium ? smoothed : llama;
      }
      break;
    }
    case RopeScaling::Yarn: {
      if (p.attention_factor > 0)
        attention_factor_ = static_cast<float>(p.attention_factor);
      else if (p.mscale != 0.0 && p.mscale_all_dim != 0.0)
        attention_factor_ = static_cast<float>(yarnGetMscale(p.factor, p.mscale) /
                                               yarnGetMscale(p.factor, p.mscale_all_dim));
      else
        attention_factor_ = static_cast<float>(yarnGetMscale(p.factor, 1.0));
      // HF: beta_fast/beta_slow default to 32/1 when missing or 0 (`get(...) or 32`).
      const double beta_fast = p.beta_fast != 0.0 ? p.beta_fast : 32.0;
      const double beta_slow = p.beta_slow != 0.0 ? p.beta_slow : 1.0;
      const double max_pos = double(p.original_max_position);
      double low = correctionDim(beta_fast, dim, p.theta, max_pos);
      double high = correctionDim(beta_slow, dim, p.theta, max_pos);
      if (p.truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, double(dim - 1));
      if (low == high) high += 0.001;
      for (int64_t i = 0; i < half; ++i) {
        const float pos_freq = basePow(p.theta, i, dim);
        const float extrap = 1.0f / pos_freq;
        const float interp = 1.0f / (factor * pos_freq);
        float ramp = (static_cast<float>(i) - static_cast<float>(low)) /
                     static_cast<float>(high - low);
        ramp = std::min(1.0f, std::max(0.0f, ramp));
        const float extrap_factor = 1.0f - ramp;
        inv_freq_[i] = interp * (1.0f - extrap_factor) + extrap * extrap_factor;
      }
      break;
    }
  }
}

void RopeTable::apply(float* x, const int32_t* positions, int64_t T, int64_t heads,
                      int64_t head_dim) const {
  const int64_t half = p_.dim / 2;
  const bool interleaved = p_.interleaved;
  const float af = attention_factor_;
  detail::parallelFor(T, 4, [&](int64_t b, int64_t e) {
    std::vector<float> cs(half), sn(half);
    for (int64_t t = b; t < e; ++t) {
      // HF RotaryEmbedding.forward: freqs = pos.float() * inv_freq (f32), cos(freqs) * scaling.
      const float pos = static_cast<float>(positions[t]);
      for (int64_t i = 0; i < half; ++i) {
        const float f = pos * inv_freq_[i];
        cs[i] = static_cast<float>(std::cos(double(f))) * af;
        sn[i] = static_cast<float>(std::sin(double(f))) * af;
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (t * heads + h) * head_dim;
        if (interleaved) {
          // DeepSeek-V2 apply_rotary_emb: (a + ib)(cos + i sin), pairs stay in place.
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[2 * i], c = v[2 * i + 1];
            v[2 * i] = a * cs[i] - c * sn[i];
            v[2 * i + 1] = a * sn[i] + c * cs[i];
          }
        } else {
          // Llama apply_rotary_pos_emb: x * cos + rotate_half(x) * sin.
          for (int64_t i = 0; i < half; ++i) {
            const float a = v[i], c = v[i + half];
            v[i] = a * cs[i] - c * sn[i];
            v[i + half] = c * cs[i] + a * sn[i];
          }
        }
      }
    }
  });
}

}  // namespace ds::cpu

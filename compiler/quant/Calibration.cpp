// Runs a dense Llama-family checkpoint in f32 over calibration tokens and accumulates E[x x^T] of
// every GEMM weight's input (the Hessian GPTQ needs).
#include "compiler/quant/Calibration.h"

#include <algorithm>
#include <cmath>

#include "ingest/checkpoint.h"
#include "format/dtype.h"
#include "ingest/hf_config.h"

namespace mlir::ds {

namespace {

using ::ds::Status;
using ::ds::StatusOr;

struct Matrix {
  std::vector<float> data;
  int64_t rows = 0, cols = 0;
};

StatusOr<Matrix> load(const ::ds::Checkpoint& ckpt, const std::string& name, int64_t rows,
                      int64_t cols) {
  const ::ds::TensorView* t = ckpt.find(name);
  if (!t) return ::ds::notFound(ckpt.source() + ": calibration needs tensor '" + name + "'");
  if (static_cast<int64_t>(t->numel()) != rows * cols)
    return ::ds::invalidArgument(ckpt.source() + ": tensor '" + name + "' has " +
                                 std::to_string(t->numel()) + " elements, expected " +
                                 std::to_string(rows * cols));
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(rows * cols);
  DS_RETURN_IF_ERROR(::ds::convertToFloat(t->dtype, t->data, m.data.data(), m.data.size()));
  return m;
}

// y[T, m.rows] = x[T, m.cols] W^T (+ bias). Plain single-threaded loops: the runtime's GEMM
// spins up its thread pool for every one of these small products, which costs more than the
// arithmetic here. Eight partial sums keep the loop vectorizable with a fixed order.
void gemm(const float* x, int64_t T, const Matrix& m, const Matrix* bias, float* y) {
  const int64_t n = m.cols;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < m.rows; ++o) {
      const float* a = x + t * n;
      const float* b = m.data.data() + o * n;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
      float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; i < n; ++i) sum += a[i] * b[i];
      y[t * m.rows + o] = sum + (bias ? bias->data[o] : 0.0f);
    }
}

void rmsNorm(const float* x, int64_t T, int64_t n, const Matrix& g, double eps, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[t * n + i]) * x[t * n + i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
    for (int64_t i = 0; i < n; ++i) y[t * n + i] = x[t * n + i] * inv * g.data[i];
  }
}

// Hugging Face rotate_half rope on [T, heads, hd] in place.
void rope(float* x, int64_t T, int64_t heads, int64_t hd, double theta) {
  const int64_t half = hd / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double a = t * std::pow(theta, -2.0 * i / hd);
      const float c = static_cast<float>(std::cos(a)), s = static_cast<float>(std::sin(a));
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + (t * heads + h) * hd;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
}

// H += sum over rows of x x^T (upper triangle; mirrored at the end).
void accumulate(std::vector<double>& H, const float* x, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t) {
    const float* r = x + t * n;
    for (int64_t i = 0; i < n; ++i) {
      const double xi = r[i];
      double* row = H.data() + i * n;
      for (int64_t j = i; j < n; ++j) row[j] += xi * r[j];
    }
  }
}

}  // namespace

const double* QuantCalibration::find(const std::string& name, int64_t cols) const {
  auto it = hessians.find(name);
  if (it == hessians.end() || static_cast<int64_t>(it->second.size()) != cols * cols) return nullptr;
  return it->second.data();
}

StatusOr<QuantCalibration> calibrateDense(const ::ds::ModelConfig& cfg,
                                          const ::ds::Checkpoint& ckpt,
                                          const std::vector<int32_t>& tokens, int64_t window) {
  using ::ds::ModelArch;
  if (cfg.is_deepseek || !(cfg.arch == ModelArch::kLlama || cfg.arch == ModelArch::kQwen2 ||
                           cfg.arch == ModelArch::kMistral))
    return ::ds::unsupported(cfg.source + ": --quant-calib supports dense Llama, Mistral and Qwen2 "
                             "models, not model_type '" + cfg.model_type + "'");
  if (tokens.empty()) return ::ds::invalidArgument("calibration text has no tokens");
  const int64_t D = cfg.hidden_size, F = cfg.intermediate_size, L = cfg.num_hidden_layers;
  const int64_t H = cfg.num_attention_heads, KV = cfg.num_key_value_heads, hd = cfg.head_dim;
  if (D <= 0 || F <= 0 || H <= 0 || KV <= 0 || hd <= 0 || H % KV != 0)
    return ::ds::invalidArgument(cfg.source + ": calibration needs positive hidden_size, "
                                 "intermediate_size, heads and head_dim");
  for (int32_t t : tokens)
    if (t < 0 || t >= cfg.vocab_size)
      return ::ds::invalidArgument("calibration token " + std::to_string(t) + " is outside the vocabulary");
  const bool bos = cfg.bos_token_id.has_value();
  window = std::max<int64_t>(2, std::min(window, cfg.max_position_embeddings > 0
                                                     ? cfg.max_position_embeddings : window));
  const int64_t body = window - (bos ? 1 : 0);

  StatusOr<Matrix> embed = load(ckpt, "model.embed_tokens.weight", cfg.vocab_size, D);
  if (!embed.isOk()) return embed.status();
  struct Layer {
    Matrix in_norm, post_norm, q, k, v, o, gate, up, down, qb, kb, vb, ob;
    std::string p;
  };
  std::vector<Layer> layers(L);
  for (int64_t l = 0; l < L; ++l) {
    Layer& y = layers[l];
    y.p = "model.layers." + std::to_string(l) + ".";
    struct Want { Matrix* m; std::string name; int64_t rows, cols; };
    std::vector<Want> want = {
        {&y.in_norm, "input_layernorm.weight", 1, D}, {&y.post_norm, "post_attention_layernorm.weight", 1, D},
        {&y.q, "self_attn.q_proj.weight", H * hd, D}, {&y.k, "self_attn.k_proj.weight", KV * hd, D},
        {&y.v, "self_attn.v_proj.weight", KV * hd, D}, {&y.o, "self_attn.o_proj.weight", D, H * hd},
        {&y.gate, "mlp.gate_proj.weight", F, D}, {&y.up, "mlp.up_proj.weight", F, D},
        {&y.down, "mlp.down_proj.weight", D, F}};
    if (cfg.attention_qkv_bias) {
      want.push_back({&y.qb, "self_attn.q_proj.bias", 1, H * hd});
      want.push_back({&y.kb, "self_attn.k_proj.bias", 1, KV * hd});
      want.push_back({&y.vb, "self_attn.v_proj.bias", 1, KV * hd});
    }
    if (cfg.attention_o_bias) want.push_back({&y.ob, "self_attn.o_proj.bias", 1, D});
    for (const Want& w : want) {
      StatusOr<Matrix> m = load(ckpt, y.p + w.name, w.rows, w.cols);
      if (!m.isOk()) return m.status();
      *w.m = std::move(*m);
    }
  }

  QuantCalibration out;
  std::vector<std::vector<double>> Hattn(L, std::vector<double>(D * D)),
      Ho(L, std::vector<double>(H * hd * H * hd)), Hmlp(L, std::vector<double>(D * D)),
      Hdown(L, std::vector<double>(F * F));
  const float scale = static_cast<float>(cfg.attentionSoftmaxScale());
  for (size_t start = 0; start < tokens.size(); start += body) {
    std::vector<int32_t> seq;
    if (bos) seq.push_back(static_cast<int32_t>(*cfg.bos_token_id));
    seq.insert(seq.end(), tokens.begin() + start,
               tokens.begin() + std::min(tokens.size(), start + body));
    const int64_t T = static_cast<int64_t>(seq.size());
    out.tokens += T;
    ++out.sequences;
    std::vector<float> x(T * D), h(T * D), q(T * H * hd), k(T * KV * hd), v(T * KV * hd),
        att(T * H * hd), tmp(T * D), g(T * F), u(T * F), p(T);
    for (int64_t t = 0; t < T; ++t)
      std::copy_n(embed->data.data() + int64_t(seq[t]) * D, D, x.data() + t * D);
    for (int64_t l = 0; l < L; ++l) {
      const Layer& y = layers[l];
      rmsNorm(x.data(), T, D, y.in_norm, cfg.rms_norm_eps, h.data());
      accumulate(Hattn[l], h.data(), T, D);
      gemm(h.data(), T, y.q, cfg.attention_qkv_bias ? &y.qb : nullptr, q.data());
      gemm(h.data(), T, y.k, cfg.attention_qkv_bias ? &y.kb : nullptr, k.data());
      gemm(h.data(), T, y.v, cfg.attention_qkv_bias ? &y.vb : nullptr, v.data());
      rope(q.data(), T, H, hd, cfg.rope_theta);
      rope(k.data(), T, KV, hd, cfg.rope_theta);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t hh = 0; hh < H; ++hh) {
          const int64_t kh = hh / (H / KV);
          const float* qv = q.data() + (t * H + hh) * hd;
          float mx = -INFINITY;
          for (int64_t s = 0; s <= t; ++s) {
            const float* kv = k.data() + (s * KV + kh) * hd;
            float dot = 0;
            for (int64_t i = 0; i < hd; ++i) dot += qv[i] * kv[i];
            p[s] = dot * scale;
            mx = std::max(mx, p[s]);
          }
          double sum = 0;
          for (int64_t s = 0; s <= t; ++s) sum += p[s] = std::exp(p[s] - mx);
          float* o = att.data() + (t * H + hh) * hd;
          std::fill(o, o + hd, 0.0f);
          for (int64_t s = 0; s <= t; ++s) {
            const float wgt = static_cast<float>(p[s] / sum);
            const float* vv = v.data() + (s * KV + kh) * hd;
            for (int64_t i = 0; i < hd; ++i) o[i] += wgt * vv[i];
          }
        }
      accumulate(Ho[l], att.data(), T, H * hd);
      gemm(att.data(), T, y.o, cfg.attention_o_bias ? &y.ob : nullptr, tmp.data());
      for (int64_t i = 0; i < T * D; ++i) x[i] += tmp[i];
      rmsNorm(x.data(), T, D, y.post_norm, cfg.rms_norm_eps, h.data());
      accumulate(Hmlp[l], h.data(), T, D);
      gemm(h.data(), T, y.gate, nullptr, g.data());
      gemm(h.data(), T, y.up, nullptr, u.data());
      for (int64_t i = 0; i < T * F; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
      accumulate(Hdown[l], g.data(), T, F);
      gemm(g.data(), T, y.down, nullptr, tmp.data());
      for (int64_t i = 0; i < T * D; ++i) x[i] += tmp[i];
    }
  }
  auto finish = [&](std::vector<double>& m, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = i; j < n; ++j) m[j * n + i] = m[i * n + j] /= double(out.tokens);
    return m;
  };
  for (int64_t l = 0; l < L; ++l) {
    const std::string& pre = layers[l].p;
    finish(Hattn[l], D);
    finish(Ho[l], H * hd);
    finish(Hmlp[l], D);
    finish(Hdown[l], F);
    for (const char* n : {"self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"})
      out.hessians[pre + n] = Hattn[l];
    out.hessians[pre + "self_attn.o_proj.weight"] = std::move(Ho[l]);
    out.hessians[pre + "mlp.gate_proj.weight"] = Hmlp[l];
    out.hessians[pre + "mlp.up_proj.weight"] = std::move(Hmlp[l]);
    out.hessians[pre + "mlp.down_proj.weight"] = std::move(Hdown[l]);
  }
  return out;
}

}  // namespace mlir::ds

// Sampler: HF-order logits processing (penalties, temperature, top-k, top-p, min-p), a seeded
// draw, and logprobs on request.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

namespace ds {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Maps a float to a uint32 whose unsigned order is the float order (NaN already removed,
// -0 already folded into +0), so top-p can radix-select on the bits.
uint32_t orderedKey(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// Top 53 bits of one draw: every double in [0, 1) on a 2^-53 grid, equally likely.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// a * b + c in two statements, so no compiler fuses it into an FMA (which would change the
// last bit on some platforms only).
inline float mulAdd(float a, float b, float c) {
  const float ab = a * b;
  return ab + c;
}

// e^x for x <= 0: Cephes expf (reduction by ln 2, degree-6 polynomial, about 1 ulp). Below
// -87.3 (e^x leaves float's normal range) it returns 0. Branch-free so the exp loop
// vectorises, and libm-free so every platform computes the same bits.
inline float expNonPositive(float x) {
  const bool under = !(x >= -87.3f);  // also true for -inf
  const float xc = under ? -87.3f : x;
  const float fx = mulAdd(xc, 1.44269504088896341f, 0.5f);
  float n = static_cast<float>(static_cast<int32_t>(fx));  // truncates toward zero...
  n = n > fx ? n - 1.0f : n;                                // ...so step down to the floor
  float r = mulAdd(n, -0.693359375f, xc);                   // xc - n * ln2, in two parts
  r = mulAdd(n, 2.12194440e-4f, r);
  const float r2 = r * r;
  float y = mulAdd(1.9875691500e-4f, r, 1.3981999507e-3f);
  y = mulAdd(y, r, 8.3334519073e-3f);
  y = mulAdd(y, r, 4.1665795894e-2f);
  y = mulAdd(y, r, 1.6666665459e-1f);
  y = mulAdd(y, r, 5.0000001201e-1f);
  y = mulAdd(y, r2, r);
  y = y + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return under ? 0.0f : y * scale;
}

// Max ignoring NaN (-inf if none). Independent lanes let the compiler use SIMD max.
float rowMax(const float* x, int64_t n) {
  constexpr int kLanes = 16;
  float lane[kLanes];
  std::fill(lane, lane + kLanes, kNegInf);
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
  float m = kNegInf;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  for (int j = 0; j < kLanes; ++j) m = lane[j] > m ? lane[j] : m;
  return m;
}

// out[i] = e^((x[i] - max) / temperature) for all i; returns the sum, accumulated in eight
// fixed lanes (vectorisable, and the same order everywhere).
double expRow(const float* x, float* out, int64_t n, float max, float temperature) {
  constexpr int kLanes = 8;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float e = expNonPositive((x[i + j] - max) / temperature);
      out[i + j] = e;
      acc[j] += e;
    }
  }
  double total = 0.0;
  for (; i < n; ++i) {
    out[i] = expNonPositive((x[i] - max) / temperature);
    total += out[i];
  }
  for (int j = 0; j < kLanes; ++j) total += acc[j];
  return total;
}

std::string fieldError(const char* field, const char* rule, float got) {
  std::ostringstream os;
  os << "sampling: " << field << " must be " << rule << ", got " << got;
  return os.str();
}

// The logits pipeline for one row, with its scratch buffers. One per thread (thread_local
// in Sampler), reused across calls so the hot path does not allocate.
class RowWarper {
 public:
  // Fills work_ with penalised, NaN-free logits; returns their max.
  float preparePenalised(const SamplingParams& p, const float* logits, int64_t vocab,
                         const std::vector<int32_t>& history, size_t prompt_len);
  // Greedy argmax (lowest index wins ties) of the penalised logits.
  int32_t greedy(const SamplingParams& p, const float* logits, int64_t vocab,
                 const std::vector<int32_t>& history, size_t prompt_len);
  // The row the last greedy() / preparePenalised() chose from: the penalised logits, or the
  // caller's row when nothing was penalised (may hold NaN then).
  const float* usedRow() const { return used_row_; }
  // Logprobs of `chosen` and the top n over log_softmax(row / temperature) (NaN as -inf).
  void logprobs(const float* row, int64_t vocab, float temperature, int32_t chosen, int n,
                TokenLogprobs* out);
  // Runs temperature, top-k and top-p over work_ (max `max_logit`): fills exp_ for the
  // candidates, the kept set (see keep()) and kept_mass_. False if no token has mass.
  bool warp(const SamplingParams& p, int64_t vocab, float max_logit);
  // Whether token i survived top-k and top-p (valid after warp()). Inline: it runs per token.
  bool keep(int64_t i) const {
    if (topk_active_ && !(work_[i] >= topk_min_logit_)) return false;
    if (minp_active_ && !(exp_[i] >= min_p_)) return false;
    if (!topp_active_) return true;
    const uint32_t key = orderedKey(work_[i]);
    return key > boundary_key_ || (key == boundary_key_ && i <= boundary_index_);
  }
  // Calls f(i) on each candidate id in ascending order until f returns false.
  template <typename F>
  void forEachCandidate(int64_t vocab, F&& f) const {
    if (topk_active_) {
      for (int32_t i : cand_)
        if (!f(static_cast<int64_t>(i))) return;
    } else {
      for (int64_t i = 0; i < vocab; ++i)
        if (!f(i)) return;
    }
  }
  float expOf(int64_t i) const { return exp_[i]; }
  double keptMass() const { return kept_mass_; }

 private:
  // Radix select on the logit bits over the candidates, in (logit desc, id asc) order: finds
  // the first token at which the running weight (1 per token, or its exp_ mass) reaches
  // `target`. Leaves the tokens sharing that token's logit in radix_a_ (id order) and the
  // weight of all tokens with a larger logit in *above. False if the target is not reached.
  bool radixSelect(bool by_mass, double target, double* above);

  std::vector<float> work_;     // penalised logits, NaN -> -inf, -0 -> +0
  std::vector<float> exp_;      // exp((logit - max) / T); valid for candidates
  std::vector<int32_t> cand_;   // top-k survivors in id order (when top-k is active)
  std::vector<int32_t> radix_a_, radix_b_;
  std::vector<int32_t> counts_;  // generated-token counts (all zero between calls)
  std::vector<float> lp_exp_;    // logprobs' softmax numerators
  const float* used_row_ = nullptr;
  bool minp_active_ = false;
  float min_p_ = 0.0f;           // min-p keeps exp_[i] >= this (the max token's exp_ is 1)
  bool topk_active_ = false;
  float topk_min_logit_ = 0.0f;  // HF keeps every token >= the k-th largest logit
  bool topp_active_ = false;
  uint32_t boundary_key_ = 0;    // top-p keeps keys above this, and ties up to...
  int64_t boundary_index_ = 0;   // ...this token id (lower ids first among equal logits)
  double kept_mass_ = 0.0;       // sum of exp_ over the kept set
};

RowWarper& threadRow() {
  thread_local RowWarper row;
  return row;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

Status Sampler::validate(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    return invalidArgument(
        fieldError("temperature", "a finite number >= 0 (0 = greedy)", p.temperature));
  if (p.top_k < 0)
    return invalidArgument("sampling: top_k must be >= 0 (0 = off), got " + std::to_string(p.top_k));
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return invalidArgument(fieldError("top_p", "in (0, 1] (1 = off)", p.top_p));
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return invalidArgument(
        fieldError("repetition_penalty", "a finite number > 0 (1 = off)", p.repetition_penalty));
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return invalidArgument(fieldError("min_p", "in [0, 1] (0 = off)", p.min_p));
  if (!(p.presence_penalty >= -2.0f && p.presence_penalty <= 2.0f))
    return invalidArgument(fieldError("presence_penalty", "in [-2, 2] (0 = off)", p.presence_penalty));
  if (!(p.frequency_penalty >= -2.0f && p.frequency_penalty <= 2.0f))
    return invalidArgument(
        fieldError("frequency_penalty", "in [-2, 2] (0 = off)", p.frequency_penalty));
  if (p.logprobs < -1 || p.logprobs > kMaxLogprobs)
    return invalidArgument("sampling: logprobs must be in [-1, " + std::to_string(kMaxLogprobs) +
                           "] (-1 = off, 0 = the chosen token only), got " +
                           std::to_string(p.logprobs));
  return Status::ok();
}

StatusOr<Sampler> Sampler::create(const SamplingParams& params) {
  DS_RETURN_IF_ERROR(validate(params));
  return Sampler(params);
}

namespace {

float RowWarper::preparePenalised(const SamplingParams& p, const float* logits, int64_t vocab,
                                  const std::vector<int32_t>& history, size_t prompt_len) {
  work_.resize(static_cast<size_t>(vocab));
  float* w = work_.data();
  // `x + 0.0f` folds -0 into +0 so equal logits get equal radix keys.
  for (int64_t i = 0; i < vocab; ++i) w[i] = std::isnan(logits[i]) ? kNegInf : logits[i] + 0.0f;
  const float penalty = p.repetition_penalty;
  if (penalty != 1.0f) {
    // Computed from the original logit, so a token repeated in history is penalised once
    // (HF gathers and scatters, which has the same effect).
    for (int32_t t : history) {
      if (t < 0 || t >= vocab || std::isnan(logits[t])) continue;
      const float x = logits[t];
      w[t] = (x < 0.0f ? x * penalty : x / penalty) + 0.0f;
    }
  }
  // OpenAI/vLLM presence and frequency penalties over the generated tokens, after the
  // repetition penalty: frequency x count first, then presence, each subtracted once per token.
  if ((p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) && prompt_len < history.size()) {
    if (counts_.size() < static_cast<size_t>(vocab)) counts_.resize(static_cast<size_t>(vocab), 0);
    for (size_t k = prompt_len; k < history.size(); ++k)
      if (history[k] >= 0 && history[k] < vocab) ++counts_[history[k]];
    for (size_t k = prompt_len; k < history.size(); ++k) {
      const int32_t t = history[k];
      if (t < 0 || t >= vocab || counts_[t] == 0) continue;
      const float by_count = p.frequency_penalty * static_cast<float>(counts_[t]);
      const float x = w[t] - by_count;
      w[t] = (x - p.presence_penalty) + 0.0f;
      counts_[t] = 0;  // applied once; leaves counts_ zero again
    }
  }
  used_row_ = w;
  // After the penalty: a stale (too high) max would underflow every exp.
  return rowMax(w, vocab);
}

int32_t RowWarper::greedy(const SamplingParams& p, const float* logits, int64_t vocab,
                          const std::vector<int32_t>& history, size_t prompt_len) {
  const float* row = logits;
  const bool penalised = p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f ||
                         p.frequency_penalty != 0.0f;
  if (penalised && !history.empty()) {
    preparePenalised(p, logits, vocab, history, prompt_len);
    row = work_.data();
  }
  used_row_ = row;
  // Two passes (SIMD max, then the first index holding it) give torch.argmax's lowest-index
  // tie rule faster than one branchy pass.
  const float best = rowMax(row, vocab);
  if (best == kNegInf) return 0;
  int64_t i = 0;
  while (!(row[i] == best)) ++i;
  return static_cast<int32_t>(i);
}

bool RowWarper::radixSelect(bool by_mass, double target, double* above) {
  // Three passes over 11 + 11 + 10 bits of the order-preserving key: each histograms the
  // current range, walks buckets from the top until the weight reaches target, and keeps
  // that bucket's members. O(vocab), no sort, and bucket weights are summed in id order.
  static constexpr int kShift[3] = {21, 10, 0};
  static constexpr uint32_t kMask[3] = {0x7FF, 0x7FF, 0x3FF};
  double hist[2048];
  *above = 0.0;
  const int64_t vocab = static_cast<int64_t>(work_.size());
  for (int level = 0; level < 3; ++level) {
    const int shift = kShift[level];
    const uint32_t mask = kMask[level];
    std::fill(hist, hist + mask + 1, 0.0);
    auto bucketOf = [&](int64_t i) { return (orderedKey(work_[i]) >> shift) & mask; };
    auto add = [&](int64_t i) {
      hist[bucketOf(i)] += by_mass ? static_cast<double>(exp_[i]) : 1.0;
      return true;
    };
    if (level == 0)
      forEachCandidate(vocab, add);
    else
      for (int32_t i : radix_a_) add(i);

    int64_t chosen = -1;
    for (int64_t b = mask; b >= 0; --b) {
      if (*above + hist[b] >= target) {
        chosen = b;
        break;
      }
      *above += hist[b];
    }
    if (chosen < 0) return false;

    radix_b_.clear();
    auto collect = [&](int64_t i) {
      if (bucketOf(i) == static_cast<uint32_t>(chosen)) radix_b_.push_back(static_cast<int32_t>(i));
      return true;
    };
    if (level == 0)
      forEachCandidate(vocab, collect);
    else
      for (int32_t i : radix_a_) collect(i);
    radix_a_.swap(radix_b_);
  }
  return true;
}

bool RowWarper::warp(const SamplingParams& p, int64_t vocab, float max_logit) {
  topk_active_ = false;
  topp_active_ = false;
  minp_active_ = false;
  if (max_logit == kNegInf) return false;
  exp_.resize(static_cast<size_t>(vocab));

  const int64_t k = p.top_k;
  double above = 0.0;
  if (k > 0 && k < vocab && radixSelect(false, static_cast<double>(k), &above)) {
    // HF keeps every token >= the k-th largest logit, so ties at the boundary survive.
    topk_min_logit_ = work_[radix_a_.front()];
    topk_active_ = true;
    cand_.clear();
    for (int64_t i = 0; i < vocab; ++i)
      if (work_[i] >= topk_min_logit_) cand_.push_back(static_cast<int32_t>(i));
  }

  // Temperature, then a max-subtracted softmax numerator. An infinite max means those
  // tokens share all the mass.
  const float temperature = p.temperature;
  double total = 0.0;
  if (std::isinf(max_logit)) {
    forEachCandidate(vocab, [&](int64_t i) {
      exp_[i] = work_[i] == max_logit ? 1.0f : 0.0f;
      total += exp_[i];
      return true;
    });
  } else if (!topk_active_) {
    total = expRow(work_.data(), exp_.data(), vocab, max_logit, temperature);
  } else {
    for (int32_t i : cand_) {
      exp_[i] = expNonPositive((work_[i] - max_logit) / temperature);
      total += exp_[i];
    }
  }
  if (!(total > 0.0)) return false;
  kept_mass_ = total;

  // Top-p keeps the shortest prefix in (logit desc, id asc) order whose mass reaches
  // top_p * total; only rounding can make the select fail, and then it keeps everything.
  const double target = static_cast<double>(p.top_p) * total;
  if (p.top_p < 1.0f && radixSelect(true, target, &above)) {
    topp_active_ = true;
    boundary_key_ = orderedKey(work_[radix_a_.front()]);
    boundary_index_ = radix_a_.back();
    for (int32_t i : radix_a_) {
      above += exp_[i];
      if (above >= target) {
        boundary_index_ = i;
        break;
      }
    }
    kept_mass_ = above;
  }

  // Min-p (HF MinPLogitsWarper, after top-p): prob >= min_p x max prob, i.e. exp_ >= min_p
  // since the max token's exp_ is exactly 1. The max token always stays.
  if (p.min_p > 0.0f) {
    min_p_ = p.min_p;
    minp_active_ = true;
    double kept = 0.0;
    forEachCandidate(vocab, [&](int64_t i) {
      if (exp_[i] > 0.0f && keep(i)) kept += exp_[i];
      return true;
    });
    kept_mass_ = kept;
  }
  return true;
}

void RowWarper::logprobs(const float* row, int64_t vocab, float temperature, int32_t chosen,
                         int n, TokenLogprobs* out) {
  out->top.clear();
  const float max = rowMax(row, vocab);  // ignores NaN
  auto value = [&](int64_t i) { return std::isnan(row[i]) ? kNegInf : row[i]; };
  // log p_i = (x_i - max) / T - log sum_j e^((x_j - max) / T); an infinite max shares all the
  // mass among the tokens at +inf, and a row with no finite or +inf logit has no mass at all.
  double log_z = 0.0;
  int64_t at_inf = 0;
  if (std::isinf(max) && max > 0) {
    for (int64_t i = 0; i < vocab; ++i) at_inf += row[i] == max;
    log_z = std::log(static_cast<double>(at_inf));
  } else if (max != kNegInf) {
    lp_exp_.resize(static_cast<size_t>(vocab));
    log_z = std::log(expRow(row, lp_exp_.data(), vocab, max, temperature));
  }
  auto logprob = [&](int64_t i) -> float {
    const float x = value(i);
    if (max == kNegInf || x == kNegInf) return kNegInf;
    if (at_inf > 0) return x == max ? static_cast<float>(-log_z) : kNegInf;
    return static_cast<float>((static_cast<double>(x) - max) / temperature - log_z);
  };
  out->logprob = logprob(chosen);
  if (n <= 0) return;
  // Top n by (logit desc, id asc): an insertion list, ids visited in ascending order so an
  // equal logit never displaces an earlier id.
  std::vector<std::pair<float, int32_t>> best;
  best.reserve(static_cast<size_t>(n) + 1);
  for (int64_t i = 0; i < vocab; ++i) {
    const float x = value(i);
    if (static_cast<int>(best.size()) == n && !(x > best.back().first)) continue;
    size_t at = best.size();
    while (at > 0 && best[at - 1].first < x) --at;
    best.insert(best.begin() + static_cast<std::ptrdiff_t>(at), {x, static_cast<int32_t>(i)});
    if (static_cast<int>(best.size()) > n) best.pop_back();
  }
  for (const auto& b : best) out->top.push_back({b.second, logprob(b.second)});
}

}  // namespace

namespace {

// The token sample() returns: greedy, or one draw over the warped distribution.
int32_t pickToken(const SamplingParams& p, std::mt19937_64& rng, RowWarper& row,
                  const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                  size_t prompt_len) {
  if (p.temperature == 0.0f) return row.greedy(p, logits, vocab, history, prompt_len);

  const float max_logit = row.preparePenalised(p, logits, vocab, history, prompt_len);
  if (!row.warp(p, vocab, max_logit)) return 0;  // all logits -inf/NaN: no mass

  // Walk the kept set in ascending id order: cheaper than sorting, and well defined. If
  // rounding leaves the running sum short of the target, the last kept token wins.
  const double target = uniform01(rng) * row.keptMass();
  double cumulative = 0.0;
  int64_t chosen = -1;
  row.forEachCandidate(vocab, [&](int64_t i) {
    const float e = row.expOf(i);
    if (e <= 0.0f || !row.keep(i)) return true;
    cumulative += e;
    chosen = i;
    return !(cumulative > target);
  });
  return static_cast<int32_t>(chosen);  // >= 0: the kept set holds the max-logit token
}

}  // namespace

int32_t Sampler::sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                        size_t prompt_len, TokenLogprobs* logprobs) {
  if (logits == nullptr || vocab <= 0 || vocab > std::numeric_limits<int32_t>::max()) return -1;
  RowWarper& row = threadRow();
  const int32_t token = pickToken(params_, rng_, row, logits, vocab, history, prompt_len);
  if (logprobs != nullptr && params_.logprobs >= 0) {
    // Processed: the row the token was chosen from (penalised), over the temperature.
    const bool raw = params_.logprobs_raw;
    row.logprobs(raw ? logits : row.usedRow(), vocab,
                 raw || params_.temperature == 0.0f ? 1.0f : params_.temperature, token,
                 params_.logprobs, logprobs);
  }
  return token;
}

std::vector<double> Sampler::distribution(const float* logits, int64_t vocab,
                                          const std::vector<int32_t>& history, size_t prompt_len) {
  if (logits == nullptr || vocab <= 0 || vocab > std::numeric_limits<int32_t>::max()) return {};
  std::vector<double> probs(static_cast<size_t>(vocab), 0.0);
  RowWarper& row = threadRow();
  if (params_.temperature == 0.0f) {
    probs[row.greedy(params_, logits, vocab, history, prompt_len)] = 1.0;
    return probs;
  }
  const float max_logit = row.preparePenalised(params_, logits, vocab, history, prompt_len);
  if (!row.warp(params_, vocab, max_logit)) {
    probs[0] = 1.0;
    return probs;
  }
  double kept = 0.0;
  row.forEachCandidate(vocab, [&](int64_t i) {
    if (row.keep(i)) {
      probs[i] = row.expOf(i);
      kept += row.expOf(i);
    }
    return true;
  });
  for (double& p : probs) p /= kept;
  return probs;
}

}  // namespace ds

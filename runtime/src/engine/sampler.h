// Per-request token sampler: repetition penalty, temperature, top-k, top-p over one logits row.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "base/status.h"

namespace ds {

// Hugging Face `generate` semantics (RepetitionPenaltyLogitsProcessor, then the
// Temperature, TopK and TopP warpers, in that order).
struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax); must be >= 0
  int top_k = 0;             // 0 = off; must be >= 0
  float top_p = 1.0f;        // in (0, 1]; 1 = off
  uint64_t seed = 0;         // seeds this request's RNG
  // Logits of tokens seen in `history` are divided by the penalty when positive and
  // multiplied by it otherwise (HF). Applies to greedy decoding too. Must be > 0; 1 = off.
  float repetition_penalty = 1.0f;
};

// One Sampler per request. It owns the request's RNG, so a request's tokens depend only on
// its seed, its logits and its history, never on which other requests share the batch.
//
// Determinism: the RNG is std::mt19937_64 (its output sequence is fixed by the C++
// standard) seeded with `seed`; each non-greedy sample() consumes exactly one 64-bit draw,
// turned into a uniform double in [0, 1) as (draw >> 11) * 2^-53 (no
// std::uniform_real_distribution, whose output is implementation-defined). Candidate
// selection uses no library sort whose tie order could vary, exp() is our own polynomial
// (not libm), and sums run in a fixed order, so the same inputs give the same token on any
// IEEE-754 platform (barring a compiler that contracts a*b+c into FMA across statements).
//
// Edge cases: NaN logits are treated as -inf (a NaN means a broken model, and skipping it
// keeps decoding alive); history ids outside [0, vocab) are ignored; if every logit is
// -inf/NaN the sampler returns token 0.
class Sampler {
 public:
  Sampler() : Sampler(SamplingParams{}) {}
  // `params` should have passed validate(); invalid values are not checked again here.
  explicit Sampler(const SamplingParams& params);

  // Names the offending field, e.g. "sampling: top_p must be in (0, 1], got 1.5".
  static Status validate(const SamplingParams& params);
  // validate() + construct.
  static StatusOr<Sampler> create(const SamplingParams& params);
  // Greedy with no repetition penalty: the token is the row's argmax (lowest index of the
  // maximum), which a device may compute where the logits are (LogitsView::argmax).
  bool plainGreedy() const { return params_.temperature == 0.0f && params_.repetition_penalty == 1.0f; }

  // Picks the next token from `logits[0..vocab)`; `history` is the request's prompt plus
  // generated tokens (used only by the repetition penalty). Returns -1 if logits is null or
  // vocab <= 0 (or vocab exceeds int32 ids).
  int32_t sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history);

  // The distribution sample() draws from for this row, as a dense vector of `vocab`
  // normalised probabilities (0 for filtered tokens); one-hot for greedy. Does not touch
  // the RNG. Meant for tests and logprob reporting, not the hot path.
  // sample() and distribution() are safe to call from several threads on different Samplers.
  std::vector<double> distribution(const float* logits, int64_t vocab,
                                   const std::vector<int32_t>& history);

  const SamplingParams& params() const { return params_; }

 private:
  // Only the parameters and the RNG live here: hundreds of requests may be alive, so the
  // vocab-sized scratch buffers are per sampling thread (see sampler.cpp), not per request.
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace ds

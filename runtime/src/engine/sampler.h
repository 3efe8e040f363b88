// Per-request token sampler: repetition, presence and frequency penalties, temperature, top-k,
// top-p, min-p over one logits row; optional logprobs of the chosen token and the top N.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "base/status.h"

namespace ds {

// Hugging Face `generate` semantics (RepetitionPenaltyLogitsProcessor, then the
// Temperature, TopK, TopP and MinP warpers, in that order), with OpenAI/vLLM presence and
// frequency penalties after the repetition penalty (vLLM's order). docs/runtime.md "Sampling".
// New fields go at the end: callers brace-initialise the leading ones.
struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax); must be >= 0
  int top_k = 0;             // 0 = off; must be >= 0
  float top_p = 1.0f;        // in (0, 1]; 1 = off
  uint64_t seed = 0;         // seeds this request's RNG
  // Logits of tokens seen in `history` are divided by the penalty when positive and
  // multiplied by it otherwise (HF). Applies to greedy decoding too. Must be > 0; 1 = off.
  float repetition_penalty = 1.0f;
  // Min-p (HF MinPLogitsWarper): after top-k and top-p, keeps the tokens whose probability is
  // >= min_p x the top token's, i.e. exp((logit - max) / T) >= min_p. In [0, 1]; 0 = off.
  float min_p = 0.0f;
  // OpenAI/vLLM: logit -= frequency_penalty x count, then -= presence_penalty x [count > 0],
  // where count is how often the token occurs in the *generated* tokens (not the prompt).
  // Applied after the repetition penalty; greedy too. Each in [-2, 2]; 0 = off.
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  // Logprobs of each sampled token: -1 = off (nothing computed), 0 = the chosen token's only,
  // N in [1, 20] = also the N most likely tokens. Which distribution: see logprobs_raw.
  int logprobs = -1;
  // false (default): log-softmax of the logits after the penalties and the temperature (T = 1
  // when greedy), before the top-k/top-p/min-p filters, so filtered tokens keep finite values.
  // true: log-softmax of the model's raw logits, before any sampling parameter (what vLLM
  // reports by default, logprobs_mode "raw_logprobs"). Equal when no penalty is on and T is 0 or 1.
  bool logprobs_raw = false;
};

constexpr int kMaxLogprobs = 20;

// One alternative of a sampled token's logprobs.
struct TopLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};

// Logprobs of one sampled token (SamplingParams::logprobs >= 0).
struct TokenLogprobs {
  float logprob = 0.0f;          // the chosen token's (-inf only when its logit was -inf/NaN)
  std::vector<TopLogprob> top;   // min(N, vocab) tokens, logprob descending, ties: lower id first
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
  // Ranges as vLLM: presence/frequency_penalty in [-2, 2], min_p in [0, 1], logprobs in
  // [-1, kMaxLogprobs].
  static Status validate(const SamplingParams& params);
  // validate() + construct.
  static StatusOr<Sampler> create(const SamplingParams& params);
  // Greedy with no penalty and no logprobs: the token is the row's argmax (lowest index of the
  // maximum), which a device may compute where the logits are (LogitsView::argmax). Anything
  // else needs the host logits.
  bool plainGreedy() const {
    return params_.temperature == 0.0f && !penalised() && params_.logprobs < 0;
  }
  // Any of the repetition, presence or frequency penalties is on (they read the history).
  bool penalised() const {
    return params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
           params_.frequency_penalty != 0.0f;
  }

  // Picks the next token from `logits[0..vocab)`. `history` is the request's prompt followed by
  // its generated tokens; the repetition penalty reads all of it, the presence and frequency
  // penalties only history[prompt_len..] (prompt_len 0: all of it counts as generated). With
  // `logprobs` non-null and params().logprobs >= 0, fills it (never touches the RNG). Returns
  // -1 if logits is null or vocab <= 0 (or vocab exceeds int32 ids).
  int32_t sample(const float* logits, int64_t vocab, const std::vector<int32_t>& history,
                 size_t prompt_len = 0, TokenLogprobs* logprobs = nullptr);

  // The distribution sample() draws from for this row, as a dense vector of `vocab`
  // normalised probabilities (0 for filtered tokens); one-hot for greedy. Does not touch
  // the RNG. Meant for tests and logprob reporting, not the hot path.
  // sample() and distribution() are safe to call from several threads on different Samplers.
  std::vector<double> distribution(const float* logits, int64_t vocab,
                                   const std::vector<int32_t>& history, size_t prompt_len = 0);

  const SamplingParams& params() const { return params_; }

 private:
  // Only the parameters and the RNG live here: hundreds of requests may be alive, so the
  // vocab-sized scratch buffers are per sampling thread (see sampler.cpp), not per request.
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace ds

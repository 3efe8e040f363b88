// The HF "BPE" model: vocabulary, ranked merges, byte_fallback, ignore_merges, unk, word cache.
#pragma once

#include <array>
#include <deque>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_util.h"

namespace ds::tok {

using TokenId = int32_t;

class BpeModel {
 public:
  // `model` is tokenizer.json's "model" object. With `byte_level` the vocabulary is re-keyed by the
  // raw bytes its GPT-2 alphabet characters stand for, so words are merged from single bytes.
  static StatusOr<std::unique_ptr<BpeModel>> parse(const Json& model, bool byte_level, std::string_view where);

  // Appends the ids of pre-tokenized `words`; the word cache is taken once for the whole batch.
  void encodeWords(const std::vector<std::string_view>& words, std::vector<TokenId>* out) const;

  // Vocabulary as written in the file (id -> token string, "" for holes).
  const std::vector<std::string>& vocab() const { return id_to_token_; }
  const std::unordered_map<std::string, TokenId>& tokenToId() const { return token_to_id_; }
  bool byteFallback() const { return byte_fallback_; }

 private:
  BpeModel() = default;
  void encodeWord(std::string_view word, std::vector<TokenId>* out) const;
  void initialSymbols(std::string_view word, std::vector<TokenId>* syms) const;
  void merge(std::vector<TokenId>* syms) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, TokenId> token_to_id_;   // file spelling
  std::unordered_map<std::string, TokenId> symbol_to_id_;  // raw bytes when byte_level
  std::array<TokenId, 256> byte_token_{};                   // byte-level single bytes, or <0xHH>
  struct Merge {
    int32_t rank;
    TokenId id;
  };
  std::unordered_map<uint64_t, Merge> merges_;
  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  TokenId unk_ = -1;

  static constexpr size_t kCacheMaxEntries = 1 << 17;
  static constexpr size_t kCacheMaxWordBytes = 64;
  mutable std::mutex cache_mu_;
  struct FastHash {
    size_t operator()(std::string_view s) const;
  };
  // Keys view strings in cache_keys_, so lookups by string_view allocate nothing.
  mutable std::unordered_map<std::string_view, std::vector<TokenId>, FastHash> cache_;
  mutable std::deque<std::string> cache_keys_;
};

}  // namespace ds::tok

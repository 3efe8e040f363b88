// The HF "BPE" model: vocabulary, ranked merges, byte_fallback, ignore_merges, unk, word cache.
#pragma once

#include <array>
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
  // Merges in an open-addressing table (linear probing): merge lookups are the inner loop of
  // BPE and a node-based map spent most of its time in cache misses.
  struct MergeSlot {
    uint64_t key = ~uint64_t{0};  // (left id << 32 | right id); all-ones = empty
    int32_t rank = 0;
    TokenId id = -1;
  };
  std::vector<MergeSlot> merges_;
  uint64_t merge_mask_ = 0;
  const MergeSlot* findMerge(uint64_t key) const;
  bool insertMerge(uint64_t key, int32_t rank, TokenId id);
  bool byte_level_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  bool fuse_unk_ = false;
  TokenId unk_ = -1;

  // Direct-mapped word cache: one 64-byte slot per hash bucket, overwritten on collision. A
  // node-based map cost a few cache misses per lookup, which dominated encode time.
  struct CacheSlot {
    uint64_t hash = 0;
    uint8_t key_len = 0;
    uint8_t n_ids = 0;  // 0 = empty
    char key[54];
    TokenId ids[16];
  };
  static_assert(sizeof(CacheSlot) == 128, "two cache lines per slot");
  static constexpr size_t kCacheSlots = size_t{1} << 16;
  mutable std::mutex cache_mu_;
  mutable std::vector<CacheSlot> cache_;
};

}  // namespace ds::tok

// Literal matching of added tokens (special and not) in raw text: leftmost-longest, with
// lstrip/rstrip/single_word handled as HF tokenizers' AddedVocabulary does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ds::tok {

using TokenId = int32_t;

struct AddedToken {
  TokenId id = -1;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool single_word = false;
};

class AddedTokenMatcher {
 public:
  struct Match {
    size_t start, end;  // byte range consumed in the text, including stripped whitespace
    TokenId id;
  };
  void add(const AddedToken& token);
  bool empty() const { return tokens_.empty(); }
  // Non-overlapping leftmost-longest matches. Special tokens only match when `parse_special`.
  void findAll(std::string_view text, bool parse_special, std::vector<Match>* out) const;

 private:
  int32_t child(int32_t node, unsigned char b) const;
  std::vector<AddedToken> tokens_;
  std::vector<int32_t> node_token_{-1};  // node -> index into tokens_, -1 if none
  std::unordered_map<uint64_t, int32_t> edges_;
  std::array<bool, 256> first_byte_{};
};

}  // namespace ds::tok

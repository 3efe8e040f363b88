// Byte trie over added-token contents; the first-byte table keeps the scan cheap on plain text.
#include "tokenizer/added_tokens.h"

namespace ds::tok {

namespace {
uint64_t edgeKey(int32_t node, unsigned char b) { return (static_cast<uint64_t>(node) << 8) | b; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
// Word characters for single_word: ASCII alnum/underscore and any non-ASCII byte (a cheap
// stand-in for \w that errs towards not matching inside words).
bool isWordByte(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || u == '_';
}
}  // namespace

int32_t AddedTokenMatcher::child(int32_t node, unsigned char b) const {
  auto it = edges_.find(edgeKey(node, b));
  return it == edges_.end() ? -1 : it->second;
}

void AddedTokenMatcher::add(const AddedToken& token) {
  if (token.content.empty()) return;
  int32_t node = 0;
  for (char c : token.content) {
    auto b = static_cast<unsigned char>(c);
    int32_t nx = child(node, b);
    if (nx < 0) {
      nx = static_cast<int32_t>(node_token_.size());
      node_token_.push_back(-1);
      edges_.emplace(edgeKey(node, b), nx);
    }
    node = nx;
  }
  first_byte_[static_cast<unsigned char>(token.content[0])] = true;
  // A later duplicate of the same content replaces the earlier one, like a map insert.
  node_token_[static_cast<size_t>(node)] = static_cast<int32_t>(tokens_.size());
  tokens_.push_back(token);
}

void AddedTokenMatcher::findAll(std::string_view text, bool parse_special, std::vector<Match>* out) const {
  if (tokens_.empty()) return;
  size_t n = text.size(), pos = 0, floor = 0;  // floor: end of the previous match
  while (pos < n) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t i = pos; i < n; ++i) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      int32_t t = node_token_[static_cast<size_t>(node)];
      if (t < 0) continue;
      const AddedToken& tok = tokens_[static_cast<size_t>(t)];
      if (tok.special && !parse_special) continue;
      if (tok.single_word && ((pos > 0 && isWordByte(text[pos - 1])) || (i + 1 < n && isWordByte(text[i + 1]))))
        continue;
      best = t;
      best_end = i + 1;
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens_[static_cast<size_t>(best)];
    size_t start = pos, end = best_end;
    if (tok.lstrip)
      while (start > floor && isSpace(text[start - 1])) --start;
    if (tok.rstrip)
      while (end < n && isSpace(text[end])) ++end;
    out->push_back({start, end, tok.id});
    pos = floor = end;
  }
}

}  // namespace ds::tok

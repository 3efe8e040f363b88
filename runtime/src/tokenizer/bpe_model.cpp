// BPE merging (priority queue over a linked list of symbols, as HF tokenizers does) and vocab loading.
#include "tokenizer/bpe_model.h"

#include <queue>

#include <xxhash.h>

#include "tokenizer/utf8.h"

namespace ds::tok {

namespace {
uint64_t pairKey(TokenId a, TokenId b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// A merge line: "a b" (classic) or ["a", "b"] (tokenizers >= 0.20 files).
Status splitMerge(const Json& m, const std::string& w, std::string* a, std::string* b) {
  if (m.is_string()) {
    const std::string& s = m.get_ref<const std::string&>();
    size_t sp = s.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos)
      return invalidArgument(w + ": expected \"left right\", got \"" + s + "\"");
    *a = s.substr(0, sp);
    *b = s.substr(sp + 1);
    return Status::ok();
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    *a = m[0].get<std::string>();
    *b = m[1].get<std::string>();
    return Status::ok();
  }
  return invalidArgument(w + ": expected a string \"left right\" or a pair of strings");
}
}  // namespace

StatusOr<std::unique_ptr<BpeModel>> BpeModel::parse(const Json& model, bool byte_level, std::string_view where) {
  std::string w(where);
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->byte_level_ = byte_level;
  DS_TOK_ASSIGN_OR_RETURN(m->byte_fallback_, jsonBool(model, "byte_fallback", false, w));
  DS_TOK_ASSIGN_OR_RETURN(m->ignore_merges_, jsonBool(model, "ignore_merges", false, w));
  DS_TOK_ASSIGN_OR_RETURN(m->fuse_unk_, jsonBool(model, "fuse_unk", false, w));
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      return unsupported(w + "." + key + ": not supported");
  }

  auto vit = model.find("vocab");
  if (vit == model.end() || !vit->is_object()) return invalidArgument(w + ".vocab: expected an object");
  int64_t max_id = -1;
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() >= (1 << 30))
      return invalidArgument(w + ".vocab[\"" + it.key() + "\"]: expected a non-negative integer id");
    max_id = std::max(max_id, it.value().get<int64_t>());
  }
  m->id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  m->token_to_id_.reserve(vit->size());
  m->symbol_to_id_.reserve(vit->size());
  std::string bytes;
  for (auto it = vit->begin(); it != vit->end(); ++it) {
    auto id = static_cast<TokenId>(it.value().get<int64_t>());
    m->id_to_token_[static_cast<size_t>(id)] = it.key();
    m->token_to_id_[it.key()] = id;
    if (!byte_level) m->symbol_to_id_[it.key()] = id;
    else if (byteLevelDecode(it.key(), &bytes)) m->symbol_to_id_[bytes] = id;
  }

  m->byte_token_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (byte_level) {
      auto it = m->symbol_to_id_.find(std::string(1, static_cast<char>(b)));
      if (it != m->symbol_to_id_.end()) m->byte_token_[b] = it->second;
    } else {
      char name[8];
      snprintf(name, sizeof(name), "<0x%02X>", b);
      auto it = m->token_to_id_.find(name);
      if (it != m->token_to_id_.end()) m->byte_token_[b] = it->second;
    }
  }
  if (auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    if (!it->is_string()) return invalidArgument(w + ".unk_token: expected a string");
    auto u = m->token_to_id_.find(it->get<std::string>());
    if (u == m->token_to_id_.end())
      return invalidArgument(w + ".unk_token: '" + it->get<std::string>() + "' is not in the vocabulary");
    m->unk_ = u->second;
  }

  auto mit = model.find("merges");
  if (mit == model.end() || !mit->is_array()) return invalidArgument(w + ".merges: expected an array");
  m->merges_.reserve(mit->size());
  std::string a, b;
  for (size_t i = 0; i < mit->size(); ++i) {
    std::string mw = w + ".merges[" + std::to_string(i) + "]";
    DS_RETURN_IF_ERROR(splitMerge((*mit)[i], mw, &a, &b));
    auto ia = m->token_to_id_.find(a), ib = m->token_to_id_.find(b), ic = m->token_to_id_.find(a + b);
    if (ia == m->token_to_id_.end()) return invalidArgument(mw + ": '" + a + "' is not in the vocabulary");
    if (ib == m->token_to_id_.end()) return invalidArgument(mw + ": '" + b + "' is not in the vocabulary");
    if (ic == m->token_to_id_.end()) return invalidArgument(mw + ": merged token '" + a + b + "' is not in the vocabulary");
    // The first occurrence of a pair wins, like HF's HashMap built in file order keeps ranks.
    m->merges_.emplace(pairKey(ia->second, ib->second), Merge{static_cast<int32_t>(i), ic->second});
  }
  return m;
}

void BpeModel::initialSymbols(std::string_view word, std::vector<TokenId>* syms) const {
  syms->clear();
  if (byte_level_) {
    for (char c : word) {
      TokenId id = byte_token_[static_cast<unsigned char>(c)];
      if (id >= 0) syms->push_back(id);
      else if (unk_ >= 0 && !(fuse_unk_ && !syms->empty() && syms->back() == unk_)) syms->push_back(unk_);
    }
    return;
  }
  size_t i = 0;
  std::string ch;
  while (i < word.size()) {
    size_t len = std::min(utf8SeqLen(static_cast<unsigned char>(word[i])), word.size() - i);
    ch.assign(word.data() + i, len);
    auto it = symbol_to_id_.find(ch);
    if (it != symbol_to_id_.end()) {
      syms->push_back(it->second);
    } else {
      bool all_bytes = byte_fallback_;
      for (size_t k = 0; all_bytes && k < len; ++k) all_bytes = byte_token_[static_cast<unsigned char>(ch[k])] >= 0;
      if (all_bytes) {
        for (size_t k = 0; k < len; ++k) syms->push_back(byte_token_[static_cast<unsigned char>(ch[k])]);
      } else if (unk_ >= 0 && !(fuse_unk_ && !syms->empty() && syms->back() == unk_)) {
        syms->push_back(unk_);
      }
    }
    i += len;
  }
}

void BpeModel::merge(std::vector<TokenId>* syms) const {
  size_t n = syms->size();
  if (n < 2) return;
  std::vector<TokenId>& id = *syms;
  std::vector<int32_t> next(n), prev(n);
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
    prev[i] = static_cast<int32_t>(i) - 1;
  }
  struct Cand {
    int32_t rank, pos;
    TokenId left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> q;
  auto push = [&](int32_t pos) {
    int32_t nx = next[static_cast<size_t>(pos)];
    if (nx < 0) return;
    auto it = merges_.find(pairKey(id[static_cast<size_t>(pos)], id[static_cast<size_t>(nx)]));
    if (it != merges_.end()) q.push({it->second.rank, pos, id[static_cast<size_t>(pos)], id[static_cast<size_t>(nx)]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!q.empty()) {
    Cand c = q.top();
    q.pop();
    auto p = static_cast<size_t>(c.pos);
    if (id[p] != c.left) continue;  // stale: the left symbol was merged meanwhile
    int32_t nx = next[p];
    if (nx < 0 || id[static_cast<size_t>(nx)] != c.right) continue;
    id[p] = merges_.find(pairKey(c.left, c.right))->second.id;
    id[static_cast<size_t>(nx)] = -1;
    next[p] = next[static_cast<size_t>(nx)];
    if (next[p] >= 0) prev[static_cast<size_t>(next[p])] = c.pos;
    if (prev[p] >= 0) push(prev[p]);
    push(c.pos);
  }
  size_t k = 0;
  for (size_t i = 0; i < n; ++i)
    if (id[i] >= 0) id[k++] = id[i];
  id.resize(k);
}

void BpeModel::encodeWord(std::string_view word, std::vector<TokenId>* out) const {
  if (ignore_merges_) {
    auto it = symbol_to_id_.find(std::string(word));
    if (it != symbol_to_id_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  std::vector<TokenId> syms;
  initialSymbols(word, &syms);
  merge(&syms);
  out->insert(out->end(), syms.begin(), syms.end());
}

size_t BpeModel::FastHash::operator()(std::string_view s) const { return XXH3_64bits(s.data(), s.size()); }

void BpeModel::encodeWords(const std::vector<std::string_view>& words, std::vector<TokenId>* out) const {
  // A concurrent encode simply runs uncached rather than waiting for the lock.
  std::unique_lock<std::mutex> lock(cache_mu_, std::try_to_lock);
  for (std::string_view w : words) {
    if (!lock.owns_lock() || w.size() > kCacheMaxWordBytes) {
      encodeWord(w, out);
      continue;
    }
    auto it = cache_.find(w);
    if (it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      continue;
    }
    size_t before = out->size();
    encodeWord(w, out);
    if (cache_.size() >= kCacheMaxEntries) {
      cache_.clear();
      cache_keys_.clear();
    }
    cache_keys_.emplace_back(w);
    cache_.emplace(cache_keys_.back(), std::vector<TokenId>(out->begin() + static_cast<std::ptrdiff_t>(before), out->end()));
  }
}

}  // namespace ds::tok

// BPE merging (priority queue over a linked list of symbols, as HF tokenizers does) and vocab loading.
#include "tokenizer/bpe_model.h"

#include <cstring>
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
  size_t cap = 16;
  while (cap < mit->size() * 2) cap <<= 1;
  m->merges_.assign(cap, MergeSlot());
  m->merge_mask_ = cap - 1;
  std::string a, b;
  for (size_t i = 0; i < mit->size(); ++i) {
    std::string mw = w + ".merges[" + std::to_string(i) + "]";
    DS_RETURN_IF_ERROR(splitMerge((*mit)[i], mw, &a, &b));
    auto ia = m->token_to_id_.find(a), ib = m->token_to_id_.find(b), ic = m->token_to_id_.find(a + b);
    if (ia == m->token_to_id_.end()) return invalidArgument(mw + ": '" + a + "' is not in the vocabulary");
    if (ib == m->token_to_id_.end()) return invalidArgument(mw + ": '" + b + "' is not in the vocabulary");
    if (ic == m->token_to_id_.end()) return invalidArgument(mw + ": merged token '" + a + b + "' is not in the vocabulary");
    // The first occurrence of a pair wins, like HF's HashMap built in file order keeps ranks.
    m->insertMerge(pairKey(ia->second, ib->second), static_cast<int32_t>(i), ic->second);
  }
  return m;
}

static uint64_t mergeHash(uint64_t key) { return (key * 0x9E3779B97F4A7C15ull) >> 17; }

const BpeModel::MergeSlot* BpeModel::findMerge(uint64_t key) const {
  for (uint64_t i = mergeHash(key) & merge_mask_;; i = (i + 1) & merge_mask_) {
    const MergeSlot& s = merges_[i];
    if (s.key == key) return &s;
    if (s.key == ~uint64_t{0}) return nullptr;
  }
}

// False when the pair is already present: the first occurrence in the file keeps its rank.
bool BpeModel::insertMerge(uint64_t key, int32_t rank, TokenId id) {
  for (uint64_t i = mergeHash(key) & merge_mask_;; i = (i + 1) & merge_mask_) {
    MergeSlot& s = merges_[i];
    if (s.key == key) return false;
    if (s.key == ~uint64_t{0}) {
      s = {key, rank, id};
      return true;
    }
  }
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
    const MergeSlot* m = findMerge(pairKey(id[static_cast<size_t>(pos)], id[static_cast<size_t>(nx)]));
    if (m) q.push({m->rank, pos, id[static_cast<size_t>(pos)], id[static_cast<size_t>(nx)]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
  while (!q.empty()) {
    Cand c = q.top();
    q.pop();
    auto p = static_cast<size_t>(c.pos);
    if (id[p] != c.left) continue;  // stale: the left symbol was merged meanwhile
    int32_t nx = next[p];
    if (nx < 0 || id[static_cast<size_t>(nx)] != c.right) continue;
    id[p] = findMerge(pairKey(c.left, c.right))->id;
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

void BpeModel::encodeWords(const std::vector<std::string_view>& words, std::vector<TokenId>* out) const {
  // A concurrent encode simply runs uncached rather than waiting for the lock.
  std::unique_lock<std::mutex> lock(cache_mu_, std::try_to_lock);
  if (lock.owns_lock() && cache_.empty()) cache_.resize(kCacheSlots);
  for (std::string_view w : words) {
    if (!lock.owns_lock() || w.size() > sizeof(CacheSlot::key)) {
      encodeWord(w, out);
      continue;
    }
    uint64_t h = XXH3_64bits(w.data(), w.size());
    CacheSlot& slot = cache_[h & (kCacheSlots - 1)];
    if (slot.n_ids && slot.hash == h && slot.key_len == w.size() && std::memcmp(slot.key, w.data(), w.size()) == 0) {
      out->insert(out->end(), slot.ids, slot.ids + slot.n_ids);
      continue;
    }
    size_t before = out->size();
    encodeWord(w, out);
    size_t n = out->size() - before;
    if (n == 0 || n > sizeof(CacheSlot::ids) / sizeof(TokenId)) continue;
    slot.hash = h;
    slot.key_len = static_cast<uint8_t>(w.size());
    slot.n_ids = static_cast<uint8_t>(n);
    std::memcpy(slot.key, w.data(), w.size());
    std::memcpy(slot.ids, out->data() + before, n * sizeof(TokenId));
  }
}

}  // namespace ds::tok

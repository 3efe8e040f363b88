// Pre-tokenizer implementations, mirroring the split semantics of HF tokenizers' pre_tokenizers.
#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"

namespace ds::tok {

namespace {

enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t start, end;
  bool match;
};

// HF SplitDelimiterBehavior applied to the alternating match/non-match spans of one piece.
void splitWith(std::string_view s, const std::vector<std::pair<size_t, size_t>>& m, Behavior b,
               bool invert, std::vector<std::string_view>* out) {
  // Reused per thread: this runs once per piece per Split, millions of times per second.
  thread_local std::vector<Span> spans, kept;
  spans.clear();
  kept.clear();
  size_t prev = 0;
  for (auto [st, en] : m) {
    if (prev != st) spans.push_back({prev, st, invert});
    spans.push_back({st, en, !invert});
    prev = en;
  }
  if (prev != s.size()) spans.push_back({prev, s.size(), invert});

  switch (b) {
    case Behavior::kRemoved:
      for (const Span& sp : spans)
        if (!sp.match) kept.push_back(sp);
      break;
    case Behavior::kIsolated:
      kept = spans;
      break;
    case Behavior::kMergedWithPrevious: {
      bool prev_match = false;
      for (const Span& sp : spans) {
        if (sp.match && !prev_match && !kept.empty()) kept.back().end = sp.end;
        else kept.push_back(sp);
        prev_match = sp.match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool prev_match = false;
      for (size_t i = spans.size(); i-- > 0;) {
        const Span& sp = spans[i];
        if (sp.match && !prev_match && !kept.empty()) kept.back().start = sp.start;
        else kept.push_back(sp);
        prev_match = sp.match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
    }
    case Behavior::kContiguous: {
      bool prev_match = false;
      for (const Span& sp : spans) {
        if (sp.match == prev_match && !kept.empty()) kept.back().end = sp.end;
        else kept.push_back(sp);
        prev_match = sp.match;
      }
      break;
    }
  }
  for (const Span& sp : kept)
    if (sp.end > sp.start) out->push_back(s.substr(sp.start, sp.end - sp.start));
}

class SplitPre : public PreTokenizer {
 public:
  SplitPre(std::shared_ptr<Regex> re, Behavior b, bool invert) : re_(std::move(re)), b_(b), invert_(invert) {}
  Status apply(std::vector<std::string_view>* pieces, bool, PieceArena*) const override {
    thread_local std::vector<std::string_view> out;
    thread_local std::vector<std::pair<size_t, size_t>> m;
    out.clear();
    for (std::string_view p : *pieces) {
      m.clear();
      DS_RETURN_IF_ERROR(re_->findAll(p, &m));
      // Common cases: nothing to split, or the whole piece is one match; either way the piece
      // survives whole unless it is a match that Removed drops or a non-match that invert drops.
      bool whole = m.empty() || (m.size() == 1 && m[0].first == 0 && m[0].second == p.size());
      if (whole && b_ != Behavior::kRemoved) {
        out.push_back(p);
        continue;
      }
      splitWith(p, m, b_, invert_, &out);
    }
    pieces->swap(out);  // the thread-local keeps the old buffer for the next call
    return Status::ok();
  }

 private:
  std::shared_ptr<Regex> re_;
  Behavior b_;
  bool invert_;
};

class ByteLevelPre : public PreTokenizer {
 public:
  ByteLevelPre(bool add_prefix_space, std::shared_ptr<Regex> re) : prefix_(add_prefix_space), re_(std::move(re)) {}
  Status apply(std::vector<std::string_view>* pieces, bool, PieceArena* arena) const override {
    if (prefix_)
      for (std::string_view& p : *pieces)
        if (p.empty() || p[0] != ' ') p = arena->own(" " + std::string(p));
    if (!re_) return Status::ok();
    SplitPre split(re_, Behavior::kIsolated, false);
    return split.apply(pieces, false, arena);
  }

 private:
  bool prefix_;
  std::shared_ptr<Regex> re_;
};

class MetaspacePre : public PreTokenizer {
 public:
  MetaspacePre(std::string repl, int prepend, bool split, std::shared_ptr<Regex> re)
      : repl_(std::move(repl)), prepend_(prepend), split_(split), re_(std::move(re)) {}
  // prepend_: 0 never, 1 always, 2 first.
  Status apply(std::vector<std::string_view>* pieces, bool first_segment, PieceArena* arena) const override {
    for (size_t i = 0; i < pieces->size(); ++i) {
      std::string_view& p = (*pieces)[i];
      std::string r;
      for (char c : p) {
        if (c == ' ') r += repl_;
        else r.push_back(c);
      }
      bool first = i == 0 && first_segment;
      if ((prepend_ == 1 || (prepend_ == 2 && first)) && r.compare(0, repl_.size(), repl_) != 0) r.insert(0, repl_);
      p = arena->own(std::move(r));
    }
    if (!split_) return Status::ok();
    SplitPre split(re_, Behavior::kMergedWithNext, false);
    return split.apply(pieces, false, arena);
  }

 private:
  std::string repl_;
  int prepend_;
  bool split_;
  std::shared_ptr<Regex> re_;
};

class SequencePre : public PreTokenizer {
 public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  Status apply(std::vector<std::string_view>* pieces, bool first_segment, PieceArena* arena) const override {
    for (const auto& p : parts_) DS_RETURN_IF_ERROR(p->apply(pieces, first_segment, arena));
    return Status::ok();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

StatusOr<Behavior> parseBehavior(const Json& j, const std::string& w, Behavior dflt) {
  auto it = j.find("behavior");
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_string()) return invalidArgument(w + ".behavior: expected a string");
  std::string b = it->get<std::string>();
  if (b == "Removed") return Behavior::kRemoved;
  if (b == "Isolated") return Behavior::kIsolated;
  if (b == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::kMergedWithNext;
  if (b == "Contiguous") return Behavior::kContiguous;
  return unsupported(w + ".behavior: unsupported split behavior '" + b + "'");
}

std::unique_ptr<PreTokenizer> makeSplit(std::shared_ptr<Regex> re, Behavior b, bool invert) {
  return std::unique_ptr<PreTokenizer>(new SplitPre(std::move(re), b, invert));
}

// The GPT-2 pattern HF's ByteLevel uses when use_regex is true.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

StatusOr<std::unique_ptr<PreTokenizer>> parseOne(const Json& j, const std::string& w, PreTokenizerInfo* info,
                                                 int depth = 0) {
  if (depth > kMaxTokenizerNesting)
    return invalidArgument(w.substr(0, 80) + "...: Sequence pre-tokenizers nest more than " +
                           std::to_string(kMaxTokenizerNesting) + " deep (kMaxTokenizerNesting)");
  DS_TOK_ASSIGN_OR_RETURN(std::string type, jsonType(j, w));
  if (info->byte_level)
    return unsupported(w + ": pre-tokenizer '" + type + "' after ByteLevel is not supported");
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) return invalidArgument(w + ".pretokenizers: expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < it->size(); ++i) {
      DS_TOK_ASSIGN_OR_RETURN(auto p, parseOne((*it)[i], w + ".pretokenizers[" + std::to_string(i) + "]", info, depth + 1));
      parts.push_back(std::move(p));
    }
    return std::unique_ptr<PreTokenizer>(new SequencePre(std::move(parts)));
  }
  if (type == "Split") {
    auto pit = j.find("pattern");
    if (pit == j.end()) return invalidArgument(w + ".pattern: missing");
    DS_TOK_ASSIGN_OR_RETURN(auto re, parsePattern(*pit, w));
    DS_TOK_ASSIGN_OR_RETURN(Behavior b, parseBehavior(j, w, Behavior::kIsolated));
    DS_TOK_ASSIGN_OR_RETURN(bool invert, jsonBool(j, "invert", false, w));
    return makeSplit(std::move(re), b, invert);
  }
  if (type == "ByteLevel") {
    DS_TOK_ASSIGN_OR_RETURN(bool prefix, jsonBool(j, "add_prefix_space", true, w));
    DS_TOK_ASSIGN_OR_RETURN(bool use_regex, jsonBool(j, "use_regex", true, w));
    std::shared_ptr<Regex> re;
    if (use_regex) {
      DS_TOK_ASSIGN_OR_RETURN(re, Regex::compile(kGpt2Pattern, false, w));
    }
    info->byte_level = true;
    return std::unique_ptr<PreTokenizer>(new ByteLevelPre(prefix, std::move(re)));
  }
  if (type == "Digits") {
    DS_TOK_ASSIGN_OR_RETURN(bool individual, jsonBool(j, "individual_digits", false, w));
    DS_TOK_ASSIGN_OR_RETURN(auto re, Regex::compile(R"(\p{N})", false, w));
    return makeSplit(std::move(re), individual ? Behavior::kIsolated : Behavior::kContiguous, false);
  }
  if (type == "Whitespace") {
    DS_TOK_ASSIGN_OR_RETURN(auto re, Regex::compile(R"(\w+|[^\w\s]+)", false, w));
    return makeSplit(std::move(re), Behavior::kRemoved, true);
  }
  if (type == "WhitespaceSplit") {
    DS_TOK_ASSIGN_OR_RETURN(auto re, Regex::compile(R"(\s+)", false, w));
    return makeSplit(std::move(re), Behavior::kRemoved, false);
  }
  if (type == "Punctuation") {
    DS_TOK_ASSIGN_OR_RETURN(Behavior b, parseBehavior(j, w, Behavior::kIsolated));
    DS_TOK_ASSIGN_OR_RETURN(auto re, Regex::compile(R"([\p{P}!-/:-@\[-`{-~])", false, w));
    return makeSplit(std::move(re), b, false);
  }
  if (type == "Metaspace") {
    std::string repl = "\xE2\x96\x81";
    if (auto it = j.find("replacement"); it != j.end()) {
      if (!it->is_string()) return invalidArgument(w + ".replacement: expected a string");
      repl = it->get<std::string>();
    }
    if (repl.empty()) return invalidArgument(w + ".replacement: must not be empty");
    int prepend = 1;
    if (auto it = j.find("prepend_scheme"); it != j.end() && it->is_string()) {
      std::string s = it->get<std::string>();
      if (s == "never") prepend = 0;
      else if (s == "always") prepend = 1;
      else if (s == "first") prepend = 2;
      else return unsupported(w + ".prepend_scheme: unsupported value '" + s + "'");
    } else {
      DS_TOK_ASSIGN_OR_RETURN(bool add, jsonBool(j, "add_prefix_space", true, w));
      prepend = add ? 1 : 0;
    }
    DS_TOK_ASSIGN_OR_RETURN(bool split, jsonBool(j, "split", true, w));
    DS_TOK_ASSIGN_OR_RETURN(auto re, Regex::compile(repl, true, w));
    return std::unique_ptr<PreTokenizer>(new MetaspacePre(repl, prepend, split, std::move(re)));
  }
  return unsupported(w + ".type: unsupported pre-tokenizer type '" + type + "'");
}

}  // namespace

StatusOr<std::unique_ptr<PreTokenizer>> parsePreTokenizer(const Json& j, std::string_view where,
                                                          PreTokenizerInfo* info) {
  if (j.is_null()) return std::unique_ptr<PreTokenizer>();
  return parseOne(j, std::string(where), info);
}

}  // namespace ds::tok

// HF decoder configs compiled into per-id byte pieces, and the streaming decode state.
#include "tokenizer/decoder.h"

#include <algorithm>

namespace ds::tok {

namespace {

struct Op {
  enum Kind { kByteLevel, kReplace, kByteFallback, kStrip, kMetaspace } kind;
  std::string from, to;  // Replace; Metaspace uses `from` as the replacement char
  int start = 0, stop = 0;
  char strip_char = ' ';
};

void replaceAll(std::string* s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  size_t pos = 0;
  while ((pos = s->find(from, pos)) != std::string::npos) {
    s->replace(pos, from.size(), to);
    pos += to.size();
  }
}

bool parseByteToken(const std::string& t, char* byte) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return false;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return false;
  *byte = static_cast<char>(hi * 16 + lo);
  return true;
}

// `fused` turns later Strips into whole-output rules, since after Fuse there is one token.
Status parseOps(const Json& j, const std::string& w, bool* fused, std::vector<Op>* ops, DecodeTable* table,
                int depth = 0) {
  if (depth > kMaxTokenizerNesting)
    return invalidArgument(w.substr(0, 80) + "...: Sequence decoders nest more than " +
                           std::to_string(kMaxTokenizerNesting) + " deep (kMaxTokenizerNesting)");
  DS_TOK_ASSIGN_OR_RETURN(std::string type, jsonType(j, w));
  if (type == "Sequence") {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array()) return invalidArgument(w + ".decoders: expected an array");
    for (size_t i = 0; i < it->size(); ++i)
      DS_RETURN_IF_ERROR(parseOps((*it)[i], w + ".decoders[" + std::to_string(i) + "]", fused, ops, table, depth + 1));
    return Status::ok();
  }
  if (type == "ByteLevel") {
    ops->push_back({Op::kByteLevel, "", ""});
    return Status::ok();
  }
  if (type == "ByteFallback") {
    ops->push_back({Op::kByteFallback, "", ""});
    return Status::ok();
  }
  if (type == "Fuse") {
    *fused = true;
    return Status::ok();
  }
  if (type == "Replace") {
    auto pit = j.find("pattern");
    if (pit == j.end() || !pit->is_object() || !pit->contains("String") || !(*pit)["String"].is_string())
      return unsupported(w + ".pattern: only {\"String\": ...} patterns are supported in decoders");
    DS_TOK_ASSIGN_OR_RETURN(std::string content, jsonString(j, "content", w));
    ops->push_back({Op::kReplace, (*pit)["String"].get<std::string>(), content});
    return Status::ok();
  }
  if (type == "Strip") {
    DS_TOK_ASSIGN_OR_RETURN(std::string content, jsonString(j, "content", w));
    auto num = [&](const char* k) -> int {
      auto it = j.find(k);
      return it != j.end() && it->is_number_integer() ? std::max(0, std::min(1 << 20, it->get<int>())) : 0;
    };
    if (content.size() != 1) return unsupported(w + ".content: only single-byte strip characters are supported");
    Op op{Op::kStrip, "", ""};
    op.start = num("start");
    op.stop = num("stop");
    op.strip_char = content[0];
    if (*fused) {
      if (op.stop > 0) return unsupported(w + ".stop: stripping the end of the fused output is not supported");
      table->leading_strip += op.start;
      table->leading_strip_char = op.strip_char;
      return Status::ok();
    }
    ops->push_back(op);
    return Status::ok();
  }
  if (type == "Metaspace") {
    std::string repl = "\xE2\x96\x81";
    if (auto it = j.find("replacement"); it != j.end() && it->is_string()) repl = it->get<std::string>();
    bool prepend = true;
    if (auto it = j.find("prepend_scheme"); it != j.end() && it->is_string()) {
      prepend = it->get<std::string>() != "never";
    } else {
      DS_TOK_ASSIGN_OR_RETURN(prepend, jsonBool(j, "add_prefix_space", true, w));
    }
    ops->push_back({Op::kMetaspace, repl, " "});
    if (prepend) table->first_token_strip = 1;
    return Status::ok();
  }
  return unsupported(w + ".type: unsupported decoder type '" + type + "'");
}

}  // namespace

Status buildDecodeTable(const Json& decoder, const std::vector<std::string>& id_to_token,
                        std::string_view where, DecodeTable* table) {
  std::vector<Op> ops;
  bool fused = false;
  if (decoder.is_null()) table->join_with_space = true;
  else DS_RETURN_IF_ERROR(parseOps(decoder, std::string(where), &fused, &ops, table));
  table->piece.resize(id_to_token.size());
  table->flags.resize(id_to_token.size(), 0);
  std::string bytes;
  for (size_t id = 0; id < id_to_token.size(); ++id) {
    std::string t = id_to_token[id];
    bool raw = false;  // already raw bytes (ByteFallback): later string rewrites do not apply
    for (const Op& op : ops) {
      switch (op.kind) {
        case Op::kByteLevel:
          if (!raw && byteLevelDecode(t, &bytes)) {
            t = bytes;
            raw = true;
          }
          break;
        case Op::kReplace:
        case Op::kMetaspace:
          if (!raw) replaceAll(&t, op.from, op.to);
          break;
        case Op::kByteFallback: {
          char b;
          if (!raw && parseByteToken(t, &b)) {
            t.assign(1, b);
            raw = true;
          }
          break;
        }
        case Op::kStrip: {
          size_t s = 0, e = t.size();
          while (s < e && static_cast<int>(s) < op.start && t[s] == op.strip_char) ++s;
          int k = 0;
          while (e > s && k < op.stop && t[e - 1] == op.strip_char) --e, ++k;
          t = t.substr(s, e - s);
          break;
        }
      }
    }
    table->piece[id] = std::move(t);
  }
  return Status::ok();
}

Status DecodeStream::push(TokenId id, std::string* out) {
  if (id < 0 || static_cast<size_t>(id) >= table_->piece.size())
    return invalidArgument("decode: token id " + std::to_string(id) + " is outside the vocabulary (size " +
                           std::to_string(table_->piece.size()) + ")");
  uint8_t flags = table_->flags[static_cast<size_t>(id)];
  if (skip_special_ && (flags & DecodeTable::kSpecial)) return Status::ok();
  std::string_view piece = table_->piece[static_cast<size_t>(id)];
  std::string joined;
  if (!(flags & DecodeTable::kTransparent)) {
    if (first_) {
      if (!(flags & DecodeTable::kKeepLeadingSpace))
        for (int k = 0; k < table_->first_token_strip && !piece.empty() && piece[0] == ' '; ++k)
          piece.remove_prefix(1);
    } else if (table_->join_with_space) {
      joined = " " + std::string(piece);
      piece = joined;
    }
    first_ = false;
  }
  while (leading_left_ > 0 && !piece.empty()) {
    if (piece[0] != table_->leading_strip_char) {
      leading_left_ = 0;
      break;
    }
    piece.remove_prefix(1);
    --leading_left_;
  }
  utf8_.feed(piece, out);
  return Status::ok();
}

}  // namespace ds::tok

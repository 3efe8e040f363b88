// tokenizer.json engine: added tokens -> normalizer -> pre-tokenizer -> BPE, plus its post-processor.
#include <algorithm>

#include "tokenizer/added_tokens.h"
#include "tokenizer/backend.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/json_util.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace ds::tok {

namespace {

class HfBackend : public Backend {
 public:
  Status load(const Json& root);
  Status encode(std::string_view text, bool parse_special, std::vector<TokenId>* out) const override;

 private:
  Status parseAddedTokens(const Json& root);
  Status parsePostProcessor(const Json& pp, const std::string& w);
  Status encodeNormalized(std::string_view text, bool first, bool parse_special, std::vector<TokenId>* out) const;
  Status encodePieces(std::string_view text, bool first, std::vector<TokenId>* out) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_;
  std::unique_ptr<BpeModel> model_;
  AddedTokenMatcher raw_added_;         // normalized=false: matched in the raw text
  AddedTokenMatcher normalized_added_;  // normalized=true: matched after the normalizer
};

Status HfBackend::load(const Json& root) {
  if (!root.is_object()) return invalidArgument("tokenizer.json: expected a JSON object");
  auto mit = root.find("model");
  if (mit == root.end() || mit->is_null()) return invalidArgument("tokenizer.json.model: missing");
  if (!mit->is_object()) return invalidArgument("tokenizer.json.model: expected an object");
  // Files written by old tokenizers versions omit model.type for BPE; they carry merges.
  std::string mtype = "BPE";
  if (mit->contains("type") || !mit->contains("merges")) {
    DS_TOK_ASSIGN_OR_RETURN(mtype, jsonType(*mit, "tokenizer.json.model"));
  }
  if (mtype != "BPE") return unsupported("tokenizer.json.model.type: unsupported model type '" + mtype + "'");

  auto field = [&](const char* k) -> const Json& {
    static const Json kNull;
    auto it = root.find(k);
    return it == root.end() ? kNull : *it;
  };
  DS_TOK_ASSIGN_OR_RETURN(normalizer_, parseNormalizer(field("normalizer"), "tokenizer.json.normalizer"));
  PreTokenizerInfo pinfo;
  DS_TOK_ASSIGN_OR_RETURN(pre_, parsePreTokenizer(field("pre_tokenizer"), "tokenizer.json.pre_tokenizer", &pinfo));
  DS_TOK_ASSIGN_OR_RETURN(model_, BpeModel::parse(*mit, pinfo.byte_level, "tokenizer.json.model"));
  info_.id_to_token = model_->vocab();
  info_.token_to_id = model_->tokenToId();
  DS_RETURN_IF_ERROR(parseAddedTokens(root));
  DS_RETURN_IF_ERROR(parsePostProcessor(field("post_processor"), "tokenizer.json.post_processor"));
  // Keeps the kSpecial flags parseAddedTokens set, growing the table to the full vocabulary.
  DS_RETURN_IF_ERROR(buildDecodeTable(field("decoder"), info_.id_to_token, "tokenizer.json.decoder", &info_.decode));
  return Status::ok();
}

Status HfBackend::parseAddedTokens(const Json& root) {
  auto it = root.find("added_tokens");
  if (it == root.end() || it->is_null()) return Status::ok();
  if (!it->is_array()) return invalidArgument("tokenizer.json.added_tokens: expected an array");
  std::vector<uint8_t>& flags = info_.decode.flags;
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& e = (*it)[i];
    std::string w = "tokenizer.json.added_tokens[" + std::to_string(i) + "]";
    if (!e.is_object()) return invalidArgument(w + ": expected an object");
    auto idit = e.find("id");
    if (idit == e.end() || !idit->is_number_integer() || idit->get<int64_t>() < 0 || idit->get<int64_t>() >= (1 << 30))
      return invalidArgument(w + ".id: expected a non-negative integer");
    AddedToken t;
    t.id = static_cast<TokenId>(idit->get<int64_t>());
    DS_TOK_ASSIGN_OR_RETURN(t.content, jsonString(e, "content", w));
    if (t.content.empty()) return invalidArgument(w + ".content: must not be empty");
    DS_TOK_ASSIGN_OR_RETURN(t.special, jsonBool(e, "special", false, w));
    DS_TOK_ASSIGN_OR_RETURN(t.lstrip, jsonBool(e, "lstrip", false, w));
    DS_TOK_ASSIGN_OR_RETURN(t.rstrip, jsonBool(e, "rstrip", false, w));
    DS_TOK_ASSIGN_OR_RETURN(t.normalized, jsonBool(e, "normalized", !t.special, w));
    DS_TOK_ASSIGN_OR_RETURN(t.single_word, jsonBool(e, "single_word", false, w));
    auto idx = static_cast<size_t>(t.id);
    if (idx >= info_.id_to_token.size()) info_.id_to_token.resize(idx + 1);
    info_.id_to_token[idx] = t.content;
    info_.token_to_id[t.content] = t.id;
    if (flags.size() < info_.id_to_token.size()) flags.resize(info_.id_to_token.size(), 0);
    if (t.special) flags[idx] |= DecodeTable::kSpecial;
    if (t.normalized && normalizer_) normalized_added_.add(t);
    else raw_added_.add(t);
  }
  return Status::ok();
}

// Resolves a token string of the post-processor to an id.
StatusOr<TokenId> lookup(const BackendInfo& info, const std::string& token, const std::string& w) {
  auto it = info.token_to_id.find(token);
  if (it == info.token_to_id.end()) return invalidArgument(w + ": token '" + token + "' is not in the vocabulary");
  return it->second;
}

Status HfBackend::parsePostProcessor(const Json& pp, const std::string& w) {
  if (pp.is_null()) return Status::ok();
  DS_TOK_ASSIGN_OR_RETURN(std::string type, jsonType(pp, w));
  if (type == "Sequence") {
    auto it = pp.find("processors");
    if (it == pp.end() || !it->is_array()) return invalidArgument(w + ".processors: expected an array");
    for (size_t i = 0; i < it->size(); ++i)
      DS_RETURN_IF_ERROR(parsePostProcessor((*it)[i], w + ".processors[" + std::to_string(i) + "]"));
    return Status::ok();
  }
  if (type == "ByteLevel") return Status::ok();  // only adjusts offsets
  if (type == "TemplateProcessing") {
    auto sit = pp.find("single");
    if (sit == pp.end() || !sit->is_array()) return invalidArgument(w + ".single: expected an array");
    std::vector<TokenId> prefix, suffix;
    bool seen_a = false;
    for (size_t i = 0; i < sit->size(); ++i) {
      const Json& piece = (*sit)[i];
      std::string pw = w + ".single[" + std::to_string(i) + "]";
      if (piece.is_object() && piece.contains("Sequence")) {
        seen_a = true;
        continue;
      }
      if (!piece.is_object() || !piece.contains("SpecialToken") || !piece["SpecialToken"].is_object())
        return invalidArgument(pw + ": expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
      DS_TOK_ASSIGN_OR_RETURN(std::string name, jsonString(piece["SpecialToken"], "id", pw + ".SpecialToken"));
      // Resolved by name: the ids listed in special_tokens can be stale (deepseek writes [0]), and
      // transformers' Llama-style classes rebuild the template from the token strings anyway.
      DS_TOK_ASSIGN_OR_RETURN(TokenId id, lookup(info_, name, pw));
      (seen_a ? suffix : prefix).push_back(id);
    }
    info_.template_prefix = prefix;
    info_.template_suffix = suffix;
    return Status::ok();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto tok = [&](const char* k) -> StatusOr<TokenId> {
      auto it = pp.find(k);
      if (it == pp.end() || !it->is_array() || it->empty() || !(*it)[0].is_string())
        return invalidArgument(w + "." + k + ": expected [token, id]");
      return lookup(info_, (*it)[0].get<std::string>(), w + "." + k);
    };
    DS_TOK_ASSIGN_OR_RETURN(TokenId cls, tok("cls"));
    DS_TOK_ASSIGN_OR_RETURN(TokenId sep, tok("sep"));
    info_.template_prefix = std::vector<TokenId>{cls};
    info_.template_suffix = std::vector<TokenId>{sep};
    return Status::ok();
  }
  return unsupported(w + ".type: unsupported post-processor type '" + type + "'");
}

Status HfBackend::encodePieces(std::string_view text, bool first, std::vector<TokenId>* out) const {
  std::vector<std::string_view> pieces{text};
  PieceArena arena;
  if (pre_) DS_RETURN_IF_ERROR(pre_->apply(&pieces, first, &arena));
  model_->encodeWords(pieces, out);
  return Status::ok();
}

Status HfBackend::encodeNormalized(std::string_view text, bool first, bool parse_special,
                                   std::vector<TokenId>* out) const {
  std::string s(text);
  if (normalizer_) DS_RETURN_IF_ERROR(normalizer_->apply(&s));
  if (normalized_added_.empty()) return s.empty() ? Status::ok() : encodePieces(s, first, out);
  std::vector<AddedTokenMatcher::Match> m;
  normalized_added_.findAll(s, parse_special, &m);
  size_t prev = 0;
  for (const auto& mt : m) {
    if (mt.start > prev) DS_RETURN_IF_ERROR(encodePieces(std::string_view(s).substr(prev, mt.start - prev), first && prev == 0, out));
    out->push_back(mt.id);
    prev = mt.end;
  }
  if (prev < s.size()) DS_RETURN_IF_ERROR(encodePieces(std::string_view(s).substr(prev), first && prev == 0, out));
  return Status::ok();
}

Status HfBackend::encode(std::string_view text, bool parse_special, std::vector<TokenId>* out) const {
  std::vector<AddedTokenMatcher::Match> m;
  raw_added_.findAll(text, parse_special, &m);
  size_t prev = 0;
  for (const auto& mt : m) {
    if (mt.start > prev)
      DS_RETURN_IF_ERROR(encodeNormalized(text.substr(prev, mt.start - prev), prev == 0, parse_special, out));
    out->push_back(mt.id);
    prev = mt.end;
  }
  if (prev < text.size()) DS_RETURN_IF_ERROR(encodeNormalized(text.substr(prev), prev == 0, parse_special, out));
  return Status::ok();
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> loadHfTokenizerJson(std::string_view json) {
  try {
    Json root = Json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) return invalidArgument("tokenizer.json: not valid JSON");
    auto b = std::make_unique<HfBackend>();
    DS_RETURN_IF_ERROR(b->load(root));
    return std::unique_ptr<Backend>(std::move(b));
  } catch (const std::exception& e) {
    // nlohmann throws on type mismatches we did not pre-check; never let it escape.
    return invalidArgument(std::string("tokenizer.json: ") + e.what());
  }
}

}  // namespace ds::tok

// Parsing of the Hugging Face side files that carry special tokens and the chat template.
#include "tokenizer/config.h"

#include "tokenizer/json_util.h"

namespace ds::tok {

namespace {

// A special token is either "text" or an AddedToken object {"content": "text", ...}; null = unset.
Status tokenText(const Json& j, const char* key, const std::string& w, std::optional<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  if (it->is_string()) {
    *out = it->get<std::string>();
    return Status::ok();
  }
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) {
      *out = c->get<std::string>();
      return Status::ok();
    }
  }
  return invalidArgument(w + "." + key + ": expected a string or an object with \"content\"");
}

Status optBool(const Json& j, const char* key, const std::string& w, std::optional<bool>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  if (!it->is_boolean()) return invalidArgument(w + "." + key + ": expected a boolean");
  *out = it->get<bool>();
  return Status::ok();
}

bool isTokenId(const Json& v) {
  return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < (int64_t{1} << 31);
}

Status optId(const Json& j, const char* key, const std::string& w, std::optional<TokenId>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::ok();
  if (!isTokenId(*it)) return invalidArgument(w + "." + key + ": expected a non-negative integer");
  *out = static_cast<TokenId>(it->get<int64_t>());
  return Status::ok();
}

StatusOr<Json> parseJson(std::string_view text, const std::string& w) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument(w + ": not valid JSON");
  if (!j.is_object()) return invalidArgument(w + ": expected a JSON object");
  return j;
}

}  // namespace

StatusOr<TokenizerConfig> parseTokenizerConfig(std::string_view json, std::string_view filename) {
  std::string w(filename);
  try {
    DS_TOK_ASSIGN_OR_RETURN(Json j, parseJson(json, w));
    TokenizerConfig c;
    DS_RETURN_IF_ERROR(tokenText(j, "bos_token", w, &c.bos_token));
    DS_RETURN_IF_ERROR(tokenText(j, "eos_token", w, &c.eos_token));
    DS_RETURN_IF_ERROR(tokenText(j, "pad_token", w, &c.pad_token));
    DS_RETURN_IF_ERROR(tokenText(j, "unk_token", w, &c.unk_token));
    DS_RETURN_IF_ERROR(optBool(j, "add_bos_token", w, &c.add_bos_token));
    DS_RETURN_IF_ERROR(optBool(j, "add_eos_token", w, &c.add_eos_token));
    if (auto it = j.find("chat_template"); it != j.end() && !it->is_null()) {
      if (it->is_string()) {
        c.chat_templates["default"] = it->get<std::string>();
      } else if (it->is_array()) {
        for (size_t i = 0; i < it->size(); ++i) {
          const Json& e = (*it)[i];
          std::string ew = w + ".chat_template[" + std::to_string(i) + "]";
          DS_TOK_ASSIGN_OR_RETURN(std::string name, jsonString(e, "name", ew));
          DS_TOK_ASSIGN_OR_RETURN(std::string tmpl, jsonString(e, "template", ew));
          c.chat_templates[name] = tmpl;
        }
      } else {
        return invalidArgument(w + ".chat_template: expected a string or a list of {name, template}");
      }
    }
    if (auto it = j.find("added_tokens_decoder"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) return invalidArgument(w + ".added_tokens_decoder: expected an object");
      for (auto e = it->begin(); e != it->end(); ++e) {
        std::string ew = w + ".added_tokens_decoder[\"" + e.key() + "\"]";
        AddedToken t;
        char* end = nullptr;
        long id = std::strtol(e.key().c_str(), &end, 10);
        if (e.key().empty() || *end != '\0' || id < 0 || id >= (1L << 30))
          return invalidArgument(ew + ": key must be a token id");
        t.id = static_cast<TokenId>(id);
        DS_TOK_ASSIGN_OR_RETURN(t.content, jsonString(e.value(), "content", ew));
        DS_TOK_ASSIGN_OR_RETURN(t.special, jsonBool(e.value(), "special", false, ew));
        DS_TOK_ASSIGN_OR_RETURN(t.lstrip, jsonBool(e.value(), "lstrip", false, ew));
        DS_TOK_ASSIGN_OR_RETURN(t.rstrip, jsonBool(e.value(), "rstrip", false, ew));
        DS_TOK_ASSIGN_OR_RETURN(t.normalized, jsonBool(e.value(), "normalized", false, ew));
        DS_TOK_ASSIGN_OR_RETURN(t.single_word, jsonBool(e.value(), "single_word", false, ew));
        c.added_tokens.push_back(std::move(t));
      }
    }
    return c;
  } catch (const std::exception& e) {
    return invalidArgument(w + ": " + e.what());
  }
}

StatusOr<GenerationConfig> parseGenerationConfig(std::string_view json, std::string_view filename) {
  std::string w(filename);
  try {
    DS_TOK_ASSIGN_OR_RETURN(Json j, parseJson(json, w));
    GenerationConfig g;
    DS_RETURN_IF_ERROR(optId(j, "bos_token_id", w, &g.bos_token_id));
    DS_RETURN_IF_ERROR(optId(j, "pad_token_id", w, &g.pad_token_id));
    if (auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
      if (isTokenId(*it)) {
        g.eos_token_ids.push_back(static_cast<TokenId>(it->get<int64_t>()));
      } else if (it->is_array()) {
        for (const Json& v : *it) {
          if (!isTokenId(v)) return invalidArgument(w + ".eos_token_id: expected integers");
          g.eos_token_ids.push_back(static_cast<TokenId>(v.get<int64_t>()));
        }
      } else {
        return invalidArgument(w + ".eos_token_id: expected an integer or a list of integers");
      }
    }
    return g;
  } catch (const std::exception& e) {
    return invalidArgument(w + ": " + e.what());
  }
}

}  // namespace ds::tok

// tokenizer_config.json / generation_config.json: special tokens, BOS/EOS flags, stop ids, chat template.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tokenizer/added_tokens.h"

namespace ds::tok {

struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token, unk_token;
  std::optional<bool> add_bos_token, add_eos_token;
  // name -> Jinja source; a plain string template is stored under "default".
  std::map<std::string, std::string> chat_templates;
  // "added_tokens_decoder": id -> token (SentencePiece models learn their specials from here).
  std::vector<AddedToken> added_tokens;
};

struct GenerationConfig {
  std::optional<TokenId> bos_token_id, pad_token_id;
  std::vector<TokenId> eos_token_ids;  // eos_token_id may be an int or a list
};

// Parse the JSON text of each file; errors name `filename` and the field.
StatusOr<TokenizerConfig> parseTokenizerConfig(std::string_view json, std::string_view filename);
StatusOr<GenerationConfig> parseGenerationConfig(std::string_view json, std::string_view filename);

}  // namespace ds::tok

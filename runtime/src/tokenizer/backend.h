// Internal interface between the Tokenizer facade and its two engines (tokenizer.json, SentencePiece).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "tokenizer/decoder.h"

namespace ds::tok {

struct TokenizerConfig;

// What an engine knows about its vocabulary; the facade adds the side-file configuration.
struct BackendInfo {
  std::vector<std::string> id_to_token;
  std::unordered_map<std::string, TokenId> token_to_id;
  DecodeTable decode;  // flags carry kSpecial for special tokens
  // Ids the file's own post-processor puts around one sequence (HF TemplateProcessing).
  std::optional<std::vector<TokenId>> template_prefix, template_suffix;
  // Model-intrinsic ids (SentencePiece knows its BOS/EOS/UNK/PAD).
  std::optional<TokenId> bos, eos, unk, pad;
  // Default for add_bos_token when no tokenizer_config.json says (HF LlamaTokenizer adds BOS).
  bool default_add_bos = false;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Encodes valid UTF-8 `text` with no BOS/EOS; special added tokens match only if `parse_special`.
  virtual Status encode(std::string_view text, bool parse_special, std::vector<TokenId>* out) const = 0;
  const BackendInfo& info() const { return info_; }

 protected:
  BackendInfo info_;
};

// tokenizer.json (Hugging Face tokenizers).
StatusOr<std::unique_ptr<Backend>> loadHfTokenizerJson(std::string_view json);
// tokenizer.model (SentencePiece protobuf); `config` supplies extra special tokens, may be null.
StatusOr<std::unique_ptr<Backend>> loadSentencePiece(std::string_view model_bytes, const TokenizerConfig* config);

}  // namespace ds::tok

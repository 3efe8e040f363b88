// Public runtime tokenizer: HF tokenizer.json (byte-level BPE) or SentencePiece, plus the
// tokenizer_config.json / generation_config.json side files; encode, decode, streaming decode.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ds {

using TokenId = int32_t;

namespace tok {
class Backend;
class DecodeStream;
struct DecodeTable;
}  // namespace tok

struct EncodeOptions {
  // Put BOS (and EOS if configured) around the text, as add_special_tokens=True does.
  bool add_special_tokens = true;
  // Turn special tokens written literally in the text (e.g. "<｜end▁of▁sentence｜>") into their
  // ids. Set false for untrusted user text so it cannot inject control tokens.
  bool parse_special = true;
};

// Streaming detokenizer: push ids one by one; each push returns only complete UTF-8 text, and
// the concatenation of all pushes plus finish() equals Tokenizer::decode of the same ids.
class IncrementalDetokenizer {
 public:
  ~IncrementalDetokenizer();
  IncrementalDetokenizer(IncrementalDetokenizer&&) noexcept;
  IncrementalDetokenizer& operator=(IncrementalDetokenizer&&) noexcept;
  // Text completed by `id` (often empty mid-character); INVALID_ARGUMENT for an unknown id.
  StatusOr<std::string> push(TokenId id);
  // Remaining text: an unfinished UTF-8 sequence comes out as U+FFFD.
  std::string finish();

 private:
  friend class Tokenizer;
  explicit IncrementalDetokenizer(std::unique_ptr<tok::DecodeStream> stream);
  std::unique_ptr<tok::DecodeStream> stream_;
};

class Tokenizer {
 public:
  // File names understood by fromFiles (the same names as in a Hugging Face model folder).
  static constexpr const char* kTokenizerJson = "tokenizer.json";
  static constexpr const char* kSentencePieceModel = "tokenizer.model";
  static constexpr const char* kTokenizerConfig = "tokenizer_config.json";
  static constexpr const char* kGenerationConfig = "generation_config.json";
  static constexpr const char* kChatTemplateJinja = "chat_template.jinja";

  // Loads from in-memory files keyed by the names above (the model artifact carries them as
  // blobs). Needs tokenizer.json or tokenizer.model (tokenizer.json wins); the rest is optional.
  static StatusOr<std::unique_ptr<Tokenizer>> fromFiles(const std::map<std::string, std::string>& files);
  // Reads whichever of the known files exist in `dir`.
  static StatusOr<std::unique_ptr<Tokenizer>> fromDirectory(const std::string& dir);
  // A model folder, or a tokenizer.json / tokenizer.model file (its folder's side files are used).
  static StatusOr<std::unique_ptr<Tokenizer>> fromPath(const std::string& path);
  // A lone tokenizer.json text.
  static StatusOr<std::unique_ptr<Tokenizer>> fromJson(std::string_view tokenizer_json);

  ~Tokenizer();

  StatusOr<std::vector<TokenId>> encode(std::string_view text, const EncodeOptions& options) const;
  StatusOr<std::vector<TokenId>> encode(std::string_view text, bool add_special_tokens = true) const {
    EncodeOptions o;
    o.add_special_tokens = add_special_tokens;
    return encode(text, o);
  }
  // Invalid UTF-8 produced by the ids comes out as U+FFFD; INVALID_ARGUMENT for an unknown id.
  StatusOr<std::string> decode(const std::vector<TokenId>& ids, bool skip_special_tokens = false) const;
  IncrementalDetokenizer newDetokenizer(bool skip_special_tokens = false) const;

  // Number of ids (one past the largest id, added tokens included).
  int32_t vocabSize() const;
  // The token's spelling in the vocabulary file ("Ġthe", "▁the", "<0x0A>"); nullopt if unknown.
  std::optional<std::string> idToToken(TokenId id) const;
  std::optional<TokenId> tokenToId(std::string_view token) const;
  bool isSpecial(TokenId id) const;

  std::optional<TokenId> bosId() const { return bos_; }
  std::optional<TokenId> eosId() const { return eos_; }
  std::optional<TokenId> padId() const { return pad_; }
  std::optional<TokenId> unkId() const { return unk_; }
  // Generation stops on any of these (EOS plus generation_config's eos_token_id list).
  const std::vector<TokenId>& stopIds() const { return stop_; }
  bool isStop(TokenId id) const;
  bool addsBos() const { return !prefix_.empty(); }
  bool addsEos() const { return !suffix_.empty(); }
  // Token strings for a chat-template renderer ("" when unknown).
  const std::string& bosToken() const { return bos_token_; }
  const std::string& eosToken() const { return eos_token_; }

  // Jinja source of the chat template: "default" (or the only one) when `name` is empty; "" if none.
  const std::string& chatTemplate(std::string_view name = {}) const;
  const std::map<std::string, std::string>& chatTemplates() const { return chat_templates_; }

  // "hf-bpe" or "sentencepiece".
  const char* kind() const { return kind_; }

 private:
  Tokenizer();
  std::unique_ptr<tok::Backend> backend_;
  const char* kind_ = "";
  std::optional<TokenId> bos_, eos_, pad_, unk_;
  std::string bos_token_, eos_token_;
  std::vector<TokenId> prefix_, suffix_, stop_;
  std::map<std::string, std::string> chat_templates_;
};

}  // namespace ds

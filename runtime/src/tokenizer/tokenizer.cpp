// Tokenizer facade: loads files (from disk or memory), resolves special tokens, encodes, decodes.
#include "tokenizer/tokenizer.h"

#include "base/read_file.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/backend.h"
#include "tokenizer/config.h"
#include "tokenizer/decoder.h"
#include "tokenizer/utf8.h"

namespace ds {

namespace fs = std::filesystem;
using tok::Backend;
using tok::BackendInfo;

IncrementalDetokenizer::IncrementalDetokenizer(std::unique_ptr<tok::DecodeStream> stream) : stream_(std::move(stream)) {}
IncrementalDetokenizer::~IncrementalDetokenizer() = default;
IncrementalDetokenizer::IncrementalDetokenizer(IncrementalDetokenizer&&) noexcept = default;
IncrementalDetokenizer& IncrementalDetokenizer::operator=(IncrementalDetokenizer&&) noexcept = default;

StatusOr<std::string> IncrementalDetokenizer::push(TokenId id) {
  std::string out;
  DS_RETURN_IF_ERROR(stream_->push(id, &out));
  return out;
}

std::string IncrementalDetokenizer::finish() {
  std::string out;
  stream_->finish(&out);
  return out;
}

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

namespace {

StatusOr<std::optional<TokenId>> resolveToken(const BackendInfo& info, const std::optional<std::string>& token,
                                              const char* field) {
  if (!token) return std::optional<TokenId>();
  auto it = info.token_to_id.find(*token);
  if (it == info.token_to_id.end())
    return invalidArgument(std::string("tokenizer_config.json.") + field + ": '" + *token +
                           "' is not in the vocabulary");
  return std::optional<TokenId>(it->second);
}

Status readFile(const fs::path& p, std::string* out) { return readRegularFile(p.string(), out); }

const char* const kKnownFiles[] = {Tokenizer::kTokenizerJson, Tokenizer::kSentencePieceModel,
                                   Tokenizer::kTokenizerConfig, Tokenizer::kGenerationConfig,
                                   Tokenizer::kChatTemplateJinja};

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromFiles(const std::map<std::string, std::string>& files) {
  tok::TokenizerConfig config;
  tok::GenerationConfig gen;
  bool has_config = false;
  if (auto it = files.find(kTokenizerConfig); it != files.end()) {
    DS_TOK_ASSIGN_OR_RETURN(config, tok::parseTokenizerConfig(it->second, kTokenizerConfig));
    has_config = true;
  }
  if (auto it = files.find(kGenerationConfig); it != files.end()) {
    DS_TOK_ASSIGN_OR_RETURN(gen, tok::parseGenerationConfig(it->second, kGenerationConfig));
  }

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  if (auto it = files.find(kTokenizerJson); it != files.end()) {
    DS_TOK_ASSIGN_OR_RETURN(t->backend_, tok::loadHfTokenizerJson(it->second));
    t->kind_ = "hf-bpe";
  } else if (auto it2 = files.find(kSentencePieceModel); it2 != files.end()) {
    DS_TOK_ASSIGN_OR_RETURN(t->backend_, tok::loadSentencePiece(it2->second, has_config ? &config : nullptr));
    t->kind_ = "sentencepiece";
  } else {
    std::string names;
    for (const auto& [name, bytes] : files) names += (names.empty() ? "" : ", ") + name;
    return notFound("tokenizer: neither tokenizer.json nor tokenizer.model among the files [" + names + "]");
  }
  const BackendInfo& info = t->backend_->info();
  auto n = static_cast<TokenId>(info.id_to_token.size());
  auto checkId = [&](std::optional<TokenId> id, const char* field) -> Status {
    if (id && (*id < 0 || *id >= n))
      return invalidArgument(std::string(field) + ": id " + std::to_string(*id) + " is outside the vocabulary (size " +
                             std::to_string(n) + ")");
    return Status::ok();
  };

  DS_TOK_ASSIGN_OR_RETURN(t->bos_, resolveToken(info, config.bos_token, "bos_token"));
  DS_TOK_ASSIGN_OR_RETURN(t->eos_, resolveToken(info, config.eos_token, "eos_token"));
  DS_TOK_ASSIGN_OR_RETURN(t->pad_, resolveToken(info, config.pad_token, "pad_token"));
  DS_TOK_ASSIGN_OR_RETURN(t->unk_, resolveToken(info, config.unk_token, "unk_token"));
  if (!t->bos_) t->bos_ = gen.bos_token_id ? gen.bos_token_id : info.bos;
  if (!t->eos_) t->eos_ = !gen.eos_token_ids.empty() ? std::optional<TokenId>(gen.eos_token_ids[0]) : info.eos;
  if (!t->pad_) t->pad_ = gen.pad_token_id ? gen.pad_token_id : info.pad;
  if (!t->unk_) t->unk_ = info.unk;
  if (!t->bos_ && info.template_prefix && !info.template_prefix->empty()) t->bos_ = info.template_prefix->front();
  DS_RETURN_IF_ERROR(checkId(t->bos_, "generation_config.json.bos_token_id"));
  DS_RETURN_IF_ERROR(checkId(t->pad_, "generation_config.json.pad_token_id"));
  for (TokenId id : gen.eos_token_ids) DS_RETURN_IF_ERROR(checkId(id, "generation_config.json.eos_token_id"));
  if (t->bos_) t->bos_token_ = info.id_to_token[static_cast<size_t>(*t->bos_)];
  if (t->eos_) t->eos_token_ = info.id_to_token[static_cast<size_t>(*t->eos_)];

  // tokenizer_config's add_bos_token/add_eos_token win over the file's post-processor, as
  // transformers' Llama-style tokenizers rebuild the template from them.
  if (config.add_bos_token) {
    if (*config.add_bos_token) {
      if (!t->bos_) return invalidArgument("tokenizer_config.json.add_bos_token: true but no BOS token is known");
      t->prefix_ = {*t->bos_};
    }
  } else if (info.template_prefix) {
    t->prefix_ = *info.template_prefix;
  } else if (info.default_add_bos && t->bos_) {
    t->prefix_ = {*t->bos_};
  }
  if (config.add_eos_token) {
    if (*config.add_eos_token) {
      if (!t->eos_) return invalidArgument("tokenizer_config.json.add_eos_token: true but no EOS token is known");
      t->suffix_ = {*t->eos_};
    }
  } else if (info.template_suffix) {
    t->suffix_ = *info.template_suffix;
  }
  if (t->eos_) t->stop_.push_back(*t->eos_);
  for (TokenId id : gen.eos_token_ids)
    if (std::find(t->stop_.begin(), t->stop_.end(), id) == t->stop_.end()) t->stop_.push_back(id);

  t->chat_templates_ = std::move(config.chat_templates);
  // transformers >= 4.43 saves the template beside the config; that file takes precedence.
  if (auto it = files.find(kChatTemplateJinja); it != files.end()) t->chat_templates_["default"] = it->second;
  return t;
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return notFound(dir + ": not a directory");
  std::map<std::string, std::string> files;
  for (const char* name : kKnownFiles) {
    fs::path p = fs::path(dir) / name;
    if (!fs::exists(p, ec)) continue;
    DS_RETURN_IF_ERROR(readFile(p, &files[name]));
  }
  if (!files.count(kTokenizerJson) && !files.count(kSentencePieceModel))
    return notFound(dir + ": contains neither tokenizer.json nor tokenizer.model");
  return fromFiles(files);
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromPath(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return fromDirectory(path);
  if (!fs::exists(path, ec)) return notFound(path + ": no such file or directory");
  fs::path p(path);
  std::string role = p.extension() == ".json" ? kTokenizerJson : p.extension() == ".model" ? kSentencePieceModel : "";
  if (role.empty()) return invalidArgument(path + ": expected a folder, a .json or a .model file");
  std::map<std::string, std::string> files;
  DS_RETURN_IF_ERROR(readFile(p, &files[role]));
  for (const char* name : {kTokenizerConfig, kGenerationConfig, kChatTemplateJinja}) {
    fs::path side = p.parent_path() / name;
    if (fs::exists(side, ec)) DS_RETURN_IF_ERROR(readFile(side, &files[name]));
  }
  auto t = fromFiles(files);
  if (!t.isOk()) return Status(t.status().code(), path + ": " + t.status().message());
  return t;
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::fromJson(std::string_view tokenizer_json) {
  return fromFiles({{kTokenizerJson, std::string(tokenizer_json)}});
}

StatusOr<std::vector<TokenId>> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  size_t bad = tok::findInvalidUtf8(text);
  if (bad != std::string_view::npos)
    return invalidArgument("encode: text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  if (options.add_special_tokens) ids = prefix_;
  DS_RETURN_IF_ERROR(backend_->encode(text, options.parse_special, &ids));
  if (options.add_special_tokens) ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
}

StatusOr<std::string> Tokenizer::decode(const std::vector<TokenId>& ids, bool skip_special_tokens) const {
  tok::DecodeStream stream(&backend_->info().decode, skip_special_tokens);
  std::string out;
  for (TokenId id : ids) DS_RETURN_IF_ERROR(stream.push(id, &out));
  stream.finish(&out);
  return out;
}

IncrementalDetokenizer Tokenizer::newDetokenizer(bool skip_special_tokens) const {
  return IncrementalDetokenizer(std::make_unique<tok::DecodeStream>(&backend_->info().decode, skip_special_tokens));
}

int32_t Tokenizer::vocabSize() const { return static_cast<int32_t>(backend_->info().id_to_token.size()); }

std::optional<std::string> Tokenizer::idToToken(TokenId id) const {
  const auto& v = backend_->info().id_to_token;
  if (id < 0 || static_cast<size_t>(id) >= v.size() || v[static_cast<size_t>(id)].empty()) return std::nullopt;
  return v[static_cast<size_t>(id)];
}

std::optional<TokenId> Tokenizer::tokenToId(std::string_view token) const {
  const auto& m = backend_->info().token_to_id;
  auto it = m.find(std::string(token));
  if (it == m.end()) return std::nullopt;
  return it->second;
}

bool Tokenizer::isSpecial(TokenId id) const {
  const auto& f = backend_->info().decode.flags;
  return id >= 0 && static_cast<size_t>(id) < f.size() && (f[static_cast<size_t>(id)] & tok::DecodeTable::kSpecial);
}

bool Tokenizer::isStop(TokenId id) const { return std::find(stop_.begin(), stop_.end(), id) != stop_.end(); }

const std::string& Tokenizer::chatTemplate(std::string_view name) const {
  static const std::string kEmpty;
  if (name.empty()) {
    auto it = chat_templates_.find("default");
    if (it != chat_templates_.end()) return it->second;
    return chat_templates_.size() == 1 ? chat_templates_.begin()->second : kEmpty;
  }
  auto it = chat_templates_.find(std::string(name));
  return it == chat_templates_.end() ? kEmpty : it->second;
}

}  // namespace ds

// SentencePiece engine (libsentencepiece): encodes with the library, decodes through the byte table.
#include <sentencepiece_processor.h>

#include "tokenizer/added_tokens.h"
#include "tokenizer/backend.h"
#include "tokenizer/config.h"

namespace ds::tok {

namespace {

class SpmBackend : public Backend {
 public:
  Status load(std::string_view bytes, const TokenizerConfig* config);
  Status encode(std::string_view text, bool parse_special, std::vector<TokenId>* out) const override;

 private:
  Status encodePlain(std::string_view text, std::vector<TokenId>* out) const;
  sentencepiece::SentencePieceProcessor sp_;
  AddedTokenMatcher specials_;  // control/added tokens written literally in the text
};

Status SpmBackend::load(std::string_view bytes, const TokenizerConfig* config) {
  auto st = sp_.LoadFromSerializedProto(bytes);
  if (!st.ok()) return invalidArgument("tokenizer.model: not a SentencePiece model: " + st.ToString());
  int n = sp_.GetPieceSize();
  info_.id_to_token.resize(static_cast<size_t>(n));
  DecodeTable& d = info_.decode;
  d.piece.resize(static_cast<size_t>(n));
  d.flags.resize(static_cast<size_t>(n), 0);
  // SentencePiece drops the dummy-prefix space of the first piece only (spm_decode "1 261" -> "a",
  // but "<0x02> 261" -> "\x02 a"); unk and byte pieces count as first but keep their text.
  d.first_token_strip = 1;
  for (int id = 0; id < n; ++id) {
    std::string piece = sp_.IdToPiece(id);
    auto i = static_cast<size_t>(id);
    info_.id_to_token[i] = piece;
    info_.token_to_id.emplace(piece, id);
    if (sp_.IsControl(id)) {
      d.flags[i] = DecodeTable::kSpecial | DecodeTable::kTransparent;
      AddedToken t{id, piece, /*special=*/true};
      specials_.add(t);
    } else if (sp_.IsUnknown(id)) {
      d.piece[i] = " \xE2\x81\x87 ";  // SentencePiece's default unk surface
      d.flags[i] = DecodeTable::kKeepLeadingSpace;
    } else if (sp_.IsByte(id)) {
      d.piece[i] = std::string(1, static_cast<char>(std::strtol(piece.substr(3, 2).c_str(), nullptr, 16)));
      d.flags[i] = DecodeTable::kKeepLeadingSpace;
    } else {
      std::string s;
      for (size_t k = 0; k < piece.size(); ++k) {
        if (piece.compare(k, 3, "\xE2\x96\x81") == 0) {
          s.push_back(' ');
          k += 2;
        } else {
          s.push_back(piece[k]);
        }
      }
      d.piece[i] = std::move(s);
    }
  }
  if (sp_.bos_id() >= 0) info_.bos = sp_.bos_id();
  if (sp_.eos_id() >= 0) info_.eos = sp_.eos_id();
  if (sp_.unk_id() >= 0) info_.unk = sp_.unk_id();
  if (sp_.pad_id() >= 0) info_.pad = sp_.pad_id();
  info_.default_add_bos = true;
  if (config) {
    for (const AddedToken& t : config->added_tokens) {
      if (t.id < 0 || t.id >= n) continue;  // tokens beyond the model have no SentencePiece id
      if (t.special) d.flags[static_cast<size_t>(t.id)] |= DecodeTable::kSpecial;
      if (!sp_.IsControl(t.id)) specials_.add(t);
    }
  }
  return Status::ok();
}

Status SpmBackend::encodePlain(std::string_view text, std::vector<TokenId>* out) const {
  std::vector<int> ids;
  auto st = sp_.Encode(text, &ids);
  if (!st.ok()) return internalError("sentencepiece encode failed: " + st.ToString());
  out->insert(out->end(), ids.begin(), ids.end());
  return Status::ok();
}

// Text between literal special tokens is encoded separately (each part gets SentencePiece's
// dummy prefix, as transformers' legacy LlamaTokenizer does).
Status SpmBackend::encode(std::string_view text, bool parse_special, std::vector<TokenId>* out) const {
  std::vector<AddedTokenMatcher::Match> m;
  specials_.findAll(text, parse_special, &m);
  size_t prev = 0;
  for (const auto& mt : m) {
    if (mt.start > prev) DS_RETURN_IF_ERROR(encodePlain(text.substr(prev, mt.start - prev), out));
    out->push_back(mt.id);
    prev = mt.end;
  }
  if (prev < text.size()) DS_RETURN_IF_ERROR(encodePlain(text.substr(prev), out));
  return Status::ok();
}

}  // namespace

StatusOr<std::unique_ptr<Backend>> loadSentencePiece(std::string_view model_bytes, const TokenizerConfig* config) {
  auto b = std::make_unique<SpmBackend>();
  DS_RETURN_IF_ERROR(b->load(model_bytes, config));
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace ds::tok

// libFuzzer harness: the first byte picks a mode; the rest is text to encode, ids to decode
// (streamed and whole, which must agree), or a tokenizer.json to parse.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

const ds::Tokenizer* deepseek() {
  static const ds::Tokenizer* tok = [] {
    const char* env = std::getenv("DS_SHARED_DATA_DIR");
    std::string dir = std::string(env && *env ? env : DS_SHARED_DATA_DIR) + "/tokenizers/deepseek-llm";
    auto t = ds::Tokenizer::fromPath(dir + "/tokenizer.json");
    if (!t.isOk()) {
      std::fprintf(stderr, "tokenizer_fuzz: %s\n", t.status().toString().c_str());
      std::abort();
    }
    return t.value().release();
  }();
  return tok;
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "tokenizer_fuzz: invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const ds::Tokenizer& t = *deepseek();
  uint8_t mode = data[0] % 3;
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  if (mode == 0) {
    ds::EncodeOptions opts;
    opts.add_special_tokens = data[0] & 4;
    opts.parse_special = data[0] & 8;
    auto ids = t.encode(body, opts);
    if (!ids.isOk()) return 0;  // invalid UTF-8 is rejected with a status
    auto text = t.decode(*ids, /*skip_special_tokens=*/true);
    check(text.isOk(), "decode of encoded ids failed");
    // Without parsed specials, byte-level BPE is lossless (added one-char tokens aside).
    if (!opts.parse_special && text->find("\xEF\xBF\xBD") == std::string::npos) check(*text == body, "round trip");
  } else if (mode == 1) {
    std::vector<ds::TokenId> ids;
    for (size_t i = 0; i + 3 <= body.size(); i += 3) {
      uint32_t v = static_cast<uint8_t>(body[i]) | static_cast<uint8_t>(body[i + 1]) << 8 |
                   static_cast<uint32_t>(static_cast<uint8_t>(body[i + 2]) & 0x01) << 16;
      ids.push_back(static_cast<ds::TokenId>(v % static_cast<uint32_t>(t.vocabSize() + 8)));
    }
    bool skip = data[0] & 4;
    auto full = t.decode(ids, skip);
    auto d = t.newDetokenizer(skip);
    std::string streamed;
    bool ok = true;
    for (ds::TokenId id : ids) {
      auto piece = d.push(id);
      if (!piece.isOk()) {
        ok = false;
        break;
      }
      streamed += *piece;
    }
    check(ok == full.isOk(), "stream and decode disagree on validity");
    if (ok) check(streamed + d.finish() == *full, "stream == decode");
  } else {
    auto tok = ds::Tokenizer::fromJson(body);
    if (tok.isOk()) {
      auto ids = (*tok)->encode("Hello world 123 \xE4\xBD\xA0\xE5\xA5\xBD <s>", true);
      if (ids.isOk()) (void)(*tok)->decode(*ids);
    }
  }
  return 0;
}

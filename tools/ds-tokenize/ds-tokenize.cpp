// ds-tokenize: print the ids of a text, or the text of comma-separated ids, with a model's tokenizer.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "common/exit_codes.h"
#include "common/numeric_flags.h"
#include "tokenizer/tokenizer.h"

namespace {

int usage(const char* msg) {
  if (msg) std::fprintf(stderr, "ds-tokenize: %s\n", msg);
  std::fprintf(stderr,
               "usage: ds-tokenize [--no-special] [--no-parse-special] <model-dir|tokenizer.json|tokenizer.model> TEXT\n"
               "       ds-tokenize [--skip-special] <model-dir|tokenizer.json|tokenizer.model> --decode 1,2,3\n"
               "TEXT '-' reads standard input. --no-special: no BOS/EOS. --no-parse-special: special-token\n"
               "text is encoded as plain text. --skip-special: drop special tokens when decoding.\n");
  return ds::tools::kExitUsage;
}

bool parseIds(const std::string& s, std::vector<ds::TokenId>* ids, std::string* err) {
  ds::tools::Parsed<std::vector<int32_t>> p = ds::tools::parseIntListFlag("token id list", s, 0, INT32_MAX);
  if (!p.value) {
    *err = p.error;
    return false;
  }
  ids->assign(p.value->begin(), p.value->end());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool add_special = true, parse_special = true, skip_special = false, decode = false;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-special") add_special = false;
    else if (a == "--no-parse-special") parse_special = false;
    else if (a == "--skip-special") skip_special = true;
    else if (a == "--decode") decode = true;
    else if (a == "-h" || a == "--help") return usage(nullptr), 0;
    else if (a.size() > 1 && a[0] == '-' && a[1] == '-') return usage(("unknown option " + a).c_str());
    else pos.push_back(a);
  }
  if (pos.size() != 2) return usage("expected a tokenizer path and one text (or id list)");
  std::string input = pos[1];
  if (input == "-") input.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());

  auto tok = ds::Tokenizer::fromPath(pos[0]);
  if (!tok.isOk()) {
    std::fprintf(stderr, "ds-tokenize: %s\n", tok.status().toString().c_str());
    return 1;
  }
  if (decode) {
    std::vector<ds::TokenId> ids;
    std::string err;
    if (!parseIds(input, &ids, &err)) return std::fprintf(stderr, "ds-tokenize: %s\n", err.c_str()), 1;
    auto text = (*tok)->decode(ids, skip_special);
    if (!text.isOk()) return std::fprintf(stderr, "ds-tokenize: %s\n", text.status().toString().c_str()), 1;
    std::fwrite(text->data(), 1, text->size(), stdout);
    std::fputc('\n', stdout);
    return 0;
  }
  ds::EncodeOptions opts;
  opts.add_special_tokens = add_special;
  opts.parse_special = parse_special;
  auto ids = (*tok)->encode(input, opts);
  if (!ids.isOk()) return std::fprintf(stderr, "ds-tokenize: %s\n", ids.status().toString().c_str()), 1;
  for (size_t i = 0; i < ids->size(); ++i) std::printf(i ? " %d" : "%d", (*ids)[i]);
  std::printf("\n");
  return 0;
}

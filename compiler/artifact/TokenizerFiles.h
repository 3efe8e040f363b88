// The tokenizer files and chat template an artifact carries, read once from the model folder and
// checked at compile time with the runtime's own tokenizer and template libraries.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "llvm/Support/Error.h"

namespace mlir::ds {

struct TokenizerFiles {
  std::string model_dir;
  // The artifact's tokenizer_files blobs: tokenizer.json, tokenizer.model, tokenizer_config.json,
  // generation_config.json, special_tokens_map.json, those that exist, in that order.
  std::vector<std::pair<std::string, std::string>> blobs;
  // chat_template.jinja, else tokenizer_config.json's chat_template (a string, or the "default"
  // of a list of {name, template}); empty when the model has none.
  std::string chat_template;
  std::string chat_template_file;  // where chat_template came from, for errors
};

// Reads the files (each must be a regular file when present: a FIFO is an error, not a hang).
llvm::Expected<TokenizerFiles> readTokenizerFiles(const std::string& model_dir);

// What ds-run will do with the artifact, done now so that a broken file fails the compile with
// its name: builds the tokenizer from the blobs (when tokenizer.json or tokenizer.model is
// there), parses the chat template and renders a one-message conversation with it.
llvm::Error checkTokenizerFiles(const TokenizerFiles& files);

}  // namespace mlir::ds

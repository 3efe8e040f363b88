// readTokenizerFiles / checkTokenizerFiles: the artifact's tokenizer blobs and chat template.
#include "compiler/artifact/TokenizerFiles.h"

#include <map>

#include "ingest/input_files.h"
#include "llvm/Support/JSON.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace mlir::ds {

namespace {

const char* const kBlobNames[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                  "generation_config.json", "special_tokens_map.json"};

// false when the file does not exist; an error when it exists but cannot be read as a file.
llvm::Expected<bool> readIfPresent(const std::string& path, std::string* out) {
  ::ds::Status st = ::ds::readRegularFile(path, out);
  if (st.isOk()) return true;
  if (st.code() == DS_NOT_FOUND) return false;
  return llvm::createStringError(st.message());
}

// tokenizer_config.json's chat_template: a string, or a list of {name, template} where "default"
// wins. Malformed JSON is left to the tokenizer check, which names the file.
std::string configChatTemplate(const std::string& text) {
  llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
  if (!json) {
    llvm::consumeError(json.takeError());
    return "";
  }
  const llvm::json::Object* obj = json->getAsObject();
  if (!obj) return "";
  if (auto s = obj->getString("chat_template")) return s->str();
  if (const llvm::json::Array* list = obj->getArray("chat_template"))
    for (const llvm::json::Value& v : *list)
      if (const llvm::json::Object* o = v.getAsObject())
        if (o->getString("name") == "default")
          if (auto s = o->getString("template")) return s->str();
  return "";
}

}  // namespace

llvm::Expected<TokenizerFiles> readTokenizerFiles(const std::string& model_dir) {
  TokenizerFiles files;
  files.model_dir = model_dir;
  std::string tokenizerConfig;
  for (const char* name : kBlobNames) {
    std::string bytes;
    llvm::Expected<bool> present = readIfPresent(model_dir + "/" + name, &bytes);
    if (!present) return present.takeError();
    if (!*present) continue;
    if (std::string(name) == "tokenizer_config.json") tokenizerConfig = bytes;
    files.blobs.emplace_back(name, std::move(bytes));
  }
  const std::string jinja = model_dir + "/chat_template.jinja";
  llvm::Expected<bool> hasJinja = readIfPresent(jinja, &files.chat_template);
  if (!hasJinja) return hasJinja.takeError();
  if (*hasJinja) {
    files.chat_template_file = jinja;
  } else if (!tokenizerConfig.empty()) {
    files.chat_template = configChatTemplate(tokenizerConfig);
    files.chat_template_file = model_dir + "/tokenizer_config.json (chat_template)";
  }
  return files;
}

llvm::Error checkTokenizerFiles(const TokenizerFiles& files) {
  std::map<std::string, std::string> byName(files.blobs.begin(), files.blobs.end());
  std::string bosToken, eosToken;
  const char* main = byName.count("tokenizer.json")    ? "tokenizer.json"
                     : byName.count("tokenizer.model") ? "tokenizer.model"
                                                       : nullptr;
  std::string chatTemplate = files.chat_template;
  std::string chatTemplateFile = files.chat_template_file;
  // Without tokenizer.json or tokenizer.model the artifact runs on token ids only (ds-run says so).
  if (main) {
    auto tokenizer = ::ds::Tokenizer::fromFiles(byName);
    if (!tokenizer.isOk())
      return llvm::createStringError(files.model_dir + "/" + main +
                                     ": the tokenizer does not load: " +
                                     tokenizer.status().message());
    bosToken = (*tokenizer)->bosToken();
    eosToken = (*tokenizer)->eosToken();
    if (chatTemplate.empty()) {  // as the runtime's Session falls back
      chatTemplate = (*tokenizer)->chatTemplate();
      chatTemplateFile = files.model_dir + "/tokenizer_config.json (chat_template)";
    }
  }
  if (chatTemplate.empty()) return llvm::Error::success();
  auto parsed = ::ds::ChatTemplate::parse(chatTemplate);
  if (!parsed.isOk())
    return llvm::createStringError(chatTemplateFile + ": the chat template does not parse: " +
                                   parsed.status().message());
  nlohmann::ordered_json context;
  context["messages"] = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hello"}}});
  context["add_generation_prompt"] = true;
  context["bos_token"] = bosToken;
  context["eos_token"] = eosToken;
  auto rendered = parsed->render(context);
  if (!rendered.isOk())
    return llvm::createStringError(chatTemplateFile +
                                   ": the chat template fails on a one-message conversation: " +
                                   rendered.status().message());
  return llvm::Error::success();
}

}  // namespace mlir::ds

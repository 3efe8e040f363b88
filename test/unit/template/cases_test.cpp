// Renders the real DeepSeek chat templates against the reference cases produced by Python jinja2.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "template/chat_template.h"

namespace ds {
namespace {

namespace fs = std::filesystem;

fs::path dataDir() {
  const char* env = std::getenv("DS_SHARED_DATA_DIR");
  return fs::path(env && *env ? env : DS_SHARED_DATA_DIR) / "chat_templates";
}

std::string readFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Names the first differing byte so a one-character whitespace mismatch is easy to find.
std::string firstDifference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  auto around = [&](const std::string& s) {
    size_t b = i < 20 ? 0 : i - 20;
    return nlohmann::json(s.substr(b, 60)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  return "first difference at byte " + std::to_string(i) + "\n  expected ..." + around(want) +
         "\n  actual   ..." + around(got);
}

struct CaseFile {
  std::string name;
  fs::path jinja;
  fs::path cases;
};

std::vector<CaseFile> caseFiles() {
  std::vector<CaseFile> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dataDir(), ec)) {
    std::string fname = e.path().filename().string();
    const std::string suffix = ".cases.json";
    if (fname.size() <= suffix.size() || fname.compare(fname.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string stem = fname.substr(0, fname.size() - suffix.size());
    out.push_back({stem, e.path().parent_path() / (stem + ".jinja"), e.path()});
  }
  std::sort(out.begin(), out.end(), [](const CaseFile& a, const CaseFile& b) { return a.name < b.name; });
  return out;
}

TEST(ChatTemplateCases, DataIsPresent) {
  auto files = caseFiles();
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "deepseek-r1-distill"), names.end()) << dataDir();
  EXPECT_NE(std::find(names.begin(), names.end(), "deepseek-v3.1"), names.end()) << dataDir();
}

TEST(ChatTemplateCases, RenderByteIdentical) {
  auto files = caseFiles();
  ASSERT_FALSE(files.empty()) << "no *.cases.json in " << dataDir();
  for (const CaseFile& f : files) {
    SCOPED_TRACE(f.name);
    ASSERT_TRUE(fs::exists(f.jinja)) << f.jinja;
    auto tmpl = ChatTemplate::parse(readFile(f.jinja));
    ASSERT_TRUE(tmpl.isOk()) << tmpl.status().message();

    // ordered_json keeps message key order exactly as the reference renderer saw it.
    nlohmann::ordered_json cases = nlohmann::ordered_json::parse(readFile(f.cases));
    ASSERT_TRUE(cases.is_array()) << f.cases;
    size_t checked = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      nlohmann::ordered_json context = cases[i];
      ASSERT_TRUE(context.contains("expected")) << f.cases << " case " << i;
      std::string expected = context["expected"].get<std::string>();
      context.erase("expected");
      auto got = tmpl->render(context);
      ASSERT_TRUE(got.isOk()) << f.name << " case " << i << ": " << got.status().message();
      EXPECT_EQ(got.value(), expected) << f.name << " case " << i << ": " << firstDifference(expected, got.value());
      ++checked;
    }
    EXPECT_GT(checked, 0u) << f.cases;
    EXPECT_EQ(checked, cases.size()) << f.cases;
  }
}

// The plain nlohmann::json overload renders the same prompt (these templates do not print key order).
TEST(ChatTemplateCases, PlainJsonOverloadMatches) {
  for (const CaseFile& f : caseFiles()) {
    auto tmpl = ChatTemplate::parse(readFile(f.jinja));
    ASSERT_TRUE(tmpl.isOk()) << tmpl.status().message();
    nlohmann::json cases = nlohmann::json::parse(readFile(f.cases));
    for (auto context : cases) {
      std::string expected = context["expected"].get<std::string>();
      context.erase("expected");
      auto got = tmpl->render(context);
      ASSERT_TRUE(got.isOk()) << got.status().message();
      EXPECT_EQ(got.value(), expected) << f.name;
    }
  }
}

}  // namespace
}  // namespace ds

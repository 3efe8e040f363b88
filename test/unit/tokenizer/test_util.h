// Helpers shared by the tokenizer tests: data paths, file reading, the llama.cpp case format.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace ds::test {

inline std::string dataDir() {
  const char* env = std::getenv("DS_SHARED_DATA_DIR");
  return env && *env ? env : DS_SHARED_DATA_DIR;
}

inline std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// llama.cpp's split(): every delimiter ends a field, and the text after the last one is a field
// too, so a trailing delimiter yields a final empty case (the file's last, empty input).
inline std::vector<std::string> splitAll(const std::string& s, const std::string& delim) {
  std::vector<std::string> out;
  size_t start = 0, pos;
  while ((pos = s.find(delim, start)) != std::string::npos) {
    out.push_back(s.substr(start, pos - start));
    start = pos + delim.size();
  }
  out.push_back(s.substr(start));
  return out;
}

inline std::vector<int> parseIdLine(const std::string& line) {
  std::vector<int> ids;
  std::istringstream ss(line);
  int v;
  while (ss >> v) ids.push_back(v);
  return ids;
}

}  // namespace ds::test

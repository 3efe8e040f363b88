// PCRE2 wrapper: compiles HF regexes with UTF/UCP and iterates matches with per-thread match data.
#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace ds::tok {

namespace {
// Match data sized for one pair (group 0 only), reused by every Regex on this thread so that
// encode() stays const and thread-safe without an allocation per call.
struct ThreadMatchData {
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  ~ThreadMatchData() { pcre2_match_data_free(md); }
};
pcre2_match_data* threadMatchData() {
  thread_local ThreadMatchData data;
  return data.md;
}
}  // namespace

StatusOr<std::shared_ptr<Regex>> Regex::compile(std::string_view pattern, bool literal,
                                                std::string_view where) {
  // PCRE2 rejects UCP together with LITERAL; a literal needs no character classes anyway.
  uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(error, buf, sizeof(buf));
    return invalidArgument(std::string(where) + ": bad regex at offset " + std::to_string(offset) +
                           ": " + reinterpret_cast<char*>(buf));
  }
  std::shared_ptr<Regex> re(new Regex());
  re->pattern_ = std::string(pattern);
  re->code_ = code;
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

Status Regex::findAll(std::string_view text,
                      std::vector<std::pair<size_t, size_t>>* matches) const {
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = threadMatchData();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t n = text.size(), start = 0;
  while (start <= n) {
    // The caller validated UTF-8 once per encode; re-checking per call would be quadratic.
    int rc = jit_ ? pcre2_jit_match(code, subject, n, start, PCRE2_NO_UTF_CHECK, md, nullptr)
                  : pcre2_match(code, subject, n, start, PCRE2_NO_UTF_CHECK, md, nullptr);
    // The JIT's default 32 KiB stack can run out on huge runs (e.g. megabytes of spaces); the
    // interpreter uses the heap instead.
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
      rc = pcre2_match(code, subject, n, start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(rc, buf, sizeof(buf));
      return internalError("regex '" + pattern_ + "' failed: " + reinterpret_cast<char*>(buf));
    }
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (e > s) {
      matches->emplace_back(s, e);
      // An empty match at the very end would be dropped anyway; skipping that last call saves
      // one JIT entry per piece, and pieces are most of what the Splits see.
      if (e == n) break;
      start = e;
    } else {
      // Empty match: step over one whole character so we never split inside a sequence.
      if (s >= n) break;
      start = s + 1;
      while (start < n && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
    }
  }
  return Status::ok();
}

}  // namespace ds::tok

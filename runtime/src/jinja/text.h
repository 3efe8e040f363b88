// Python str helpers on UTF-8 strings: code points, whitespace, strip/split, case mapping.
#pragma once

#include <string>
#include <vector>

namespace ds::tpl::text {

// Splits into code points (each a UTF-8 substring); an invalid byte counts as one code point.
std::vector<std::string> codepoints(const std::string& s);
size_t length(const std::string& s);

// Python str.isspace() for a single code point.
bool isSpace(char32_t cp);

// Python strip/lstrip/rstrip: chars == nullptr strips whitespace, else any code point in *chars.
std::string strip(const std::string& s, const std::string* chars, bool left, bool right);

// Python str.split / str.rsplit (sep == nullptr: runs of whitespace). maxsplit < 0: unlimited.
std::vector<std::string> split(const std::string& s, const std::string* sep, long maxsplit);
std::vector<std::string> rsplit(const std::string& s, const std::string* sep, long maxsplit);

// Python str.replace; count < 0 replaces all. Fails if the result would exceed max_bytes.
std::string replace(const std::string& s, const std::string& from, const std::string& to, long count,
                    size_t max_bytes);

// Case mapping covers ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (documented limitation).
std::string upper(const std::string& s);
std::string lower(const std::string& s);
std::string title(const std::string& s);       // Python str.title()
std::string capitalize(const std::string& s);  // Python str.capitalize()
std::string jinjaTitle(const std::string& s);  // jinja2's |title filter (splits words on [-\s({[<])

void appendUtf8(std::string& out, char32_t cp);

}  // namespace ds::tpl::text

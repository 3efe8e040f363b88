// Stop strings over a request's streamed text (Session): finds the first stop string in the
// text as it grows piece by piece, and holds back text that could still begin one, so the text
// handed out never contains any byte of a stop string unless asked to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ds {

constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopStringBytes = 1024;

class StopStringMatcher {
 public:
  // At most kMaxStopStrings strings, each non-empty and at most kMaxStopStringBytes bytes.
  static Status validate(const std::vector<std::string>& stops);
  // `stops` should have passed validate(). include_stop: the text handed out ends with the stop
  // string (vLLM include_stop_str_in_output) instead of just before it.
  StopStringMatcher(std::vector<std::string> stops, bool include_stop);

  struct Result {
    std::string text;   // safe to hand out now
    bool stopped = false;
    int stop = -1;      // which stop string (index into the constructor's list)
  };
  // Appends the next piece of text. Once stopped, later pieces are ignored (empty results).
  // The match reported is the one that starts earliest among those complete in the text so
  // far (ties: the shortest, i.e. the first to complete); text after it is dropped.
  Result push(std::string_view piece);
  // Generation ended without a stop string: the text still held back.
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  size_t keep_;            // longest stop - 1: the old text a new match can start in
  std::string window_;     // the last text seen: at most keep_ bytes before the held text
  size_t held_ = 0;        // trailing bytes of window_ not handed out yet
  bool stopped_ = false;
};

}  // namespace ds

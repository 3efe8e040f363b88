// StopStringMatcher: a small window over the streamed text, searched after each piece.
#include "api/stop_strings.h"

#include <algorithm>

namespace ds {

Status StopStringMatcher::validate(const std::vector<std::string>& stops) {
  if (stops.size() > kMaxStopStrings)
    return invalidArgument("stop: at most " + std::to_string(kMaxStopStrings) +
                           " stop strings, got " + std::to_string(stops.size()));
  for (size_t i = 0; i < stops.size(); ++i) {
    if (stops[i].empty())
      return invalidArgument("stop[" + std::to_string(i) + "] is empty");
    if (stops[i].size() > kMaxStopStringBytes)
      return invalidArgument("stop[" + std::to_string(i) + "] is " +
                             std::to_string(stops[i].size()) + " bytes, more than " +
                             std::to_string(kMaxStopStringBytes));
  }
  return Status::ok();
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops, bool include_stop)
    : stops_(std::move(stops)), include_stop_(include_stop), keep_(0) {
  for (const std::string& s : stops_) keep_ = std::max(keep_, s.size() - 1);
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view piece) {
  Result out;
  if (stopped_) return out;
  window_.append(piece);
  const size_t fresh = held_ + piece.size();  // bytes not handed out yet
  const size_t unsent = window_.size() - fresh;
  // Any complete occurrence is new: an older one would have stopped an earlier push, and the
  // window keeps too little old text to hold a whole one.
  size_t best_at = std::string::npos, best_len = 0;
  for (size_t i = 0; i < stops_.size(); ++i) {
    const size_t at = window_.find(stops_[i]);
    if (at == std::string::npos) continue;
    if (at < best_at || (at == best_at && stops_[i].size() < best_len)) {
      best_at = at;
      best_len = stops_[i].size();
      out.stop = static_cast<int>(i);
    }
  }
  if (best_at != std::string::npos) {
    // Held-back text covers every possible start, so the match never begins in text already
    // handed out (unless include_stop, where that text belongs to the output anyway).
    const size_t end = include_stop_ ? best_at + best_len : best_at;
    if (end > unsent) out.text = window_.substr(unsent, end - unsent);
    out.stopped = stopped_ = true;
    window_.clear();
    held_ = 0;
    return out;
  }
  // Hold back the longest suffix that is a proper prefix of a stop string (nothing when the
  // stop string is handed out anyway).
  size_t hold = 0;
  if (!include_stop_) {
    for (const std::string& s : stops_) {
      for (size_t len = std::min({s.size() - 1, window_.size(), fresh}); len > hold; --len) {
        if (window_.compare(window_.size() - len, len, s, 0, len) == 0) {
          hold = len;
          break;
        }
      }
    }
  }
  out.text = window_.substr(unsent, fresh - hold);
  held_ = hold;
  const size_t keep = std::max(keep_, held_);
  if (window_.size() > keep) window_.erase(0, window_.size() - keep);
  return out;
}

std::string StopStringMatcher::flush() {
  if (stopped_) return "";
  std::string rest = window_.substr(window_.size() - held_);
  held_ = 0;
  return rest;
}

}  // namespace ds

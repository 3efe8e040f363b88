// Small helpers shared by ds-serve's HTTP handlers (http_server.cpp, http_choices.cpp).
#pragma once

#include <httplib.h>

#include <cstdio>
#include <mutex>
#include <random>
#include <string>

#include "openai_protocol.h"

namespace ds::serve {

inline const char* kJson = "application/json";

inline std::string dumpJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

inline void sendError(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dumpJson(e.body()), kJson);
}

// An error answered by the HTTP layer itself (401, 404, 413, 503...): 5xx are server errors.
inline ApiError httpError(int status, std::string message, std::string code) {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.code = std::move(code);
  if (status >= 500) e.type = "server_error";
  return e;
}

// "cmpl-" / "chatcmpl-" + 16 random hex digits.
inline std::string newId(const char* prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix, static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace ds::serve

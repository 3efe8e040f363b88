// Built-in filters, tests, methods of str/dict/list, attribute/item lookup and global functions.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "jinja/value.h"

namespace ds::tpl {

// Resource caps that keep any template (including hostile ones) bounded in time and memory. A Limits is
// copied for every render, so its mutable counters are that render's budget.
struct Limits {
  size_t max_output_bytes = 32u << 20;      // rendered text, also any single string value
  size_t max_render_bytes = 256u << 20;     // all values alive at once (RenderMemory)
  size_t max_list_items = 1u << 20;         // elements of any list a template builds
  int64_t max_loop_iterations = 1000000;    // summed over all {% for %} loops of one render
  int64_t max_work_items = 10000000;        // loop iterations plus items visited by filters/methods
  double max_render_seconds = 10.0;         // wall clock, checked between statements and work items
  int max_eval_depth = 300;                 // nested expression/statement evaluation (macro recursion included)
  int max_macro_depth = 32;

  mutable int64_t loop_iterations = 0;
  mutable int64_t work_items = 0;
  mutable std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();

  void startRender() const;
  // Counts n items of work (filters iterating, string scans); fails past max_work_items or the deadline.
  void spend(size_t n) const;
  // Counts one loop iteration (also work); fails past max_loop_iterations.
  void loopIteration() const;
};

// Fails with jinja2-like messages when a string or list would exceed the limits.
void checkStringSize(size_t bytes, const Limits& limits);
void checkListSize(size_t items, const Limits& limits);

bool hasFilter(const std::string& name);
bool hasTest(const std::string& name);

Value applyFilter(const std::string& name, const Value& input, const Args& args, const Limits& limits);
bool applyTest(const std::string& name, const Value& input, const Args& args);

// obj.name(args) for Python str/dict/list methods. Returns false if obj's type has no such method.
bool callMethod(const Value& obj, const std::string& name, const Args& args, const Limits& limits, Value* out);

// jinja2's environment.getattr / getitem: attribute lookup falls back to dict keys; a missing
// attribute/item is Undefined; any lookup on an Undefined fails ("'x' is undefined").
Value getAttribute(const Value& obj, const std::string& name);
Value getItem(const Value& obj, const Value& key);
Value getSlice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Python iteration: list items, dict keys, string code points, Undefined -> empty; fails otherwise.
List iterate(const Value& v, const Limits& limits);

// printf-style "fmt % args" (jinja2's `format` filter and the % operator on strings).
std::string percentFormat(const std::string& fmt, const Value& args, const Limits& limits);

// Global functions every template sees: range, dict, namespace, raise_exception, strftime_now.
std::shared_ptr<Dict> makeGlobals(const Limits& limits);

}  // namespace ds::tpl

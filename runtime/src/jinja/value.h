// Dynamic values of the chat-template interpreter, with Python semantics for truthiness, str(), == and <.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ds::tpl {

// Internal error carrier: the interpreter throws it and ChatTemplate turns it into a ds::Status at the
// public boundary. line == 0 means "not positioned yet"; the evaluator fills in the innermost node.
struct TemplateError {
  std::string message;
  int line = 0;
  int col = 0;
};
[[noreturn]] void fail(std::string message);

// Nesting limit for values and for recursive value algorithms (repr, json, ==): bounds native stack
// use on values a template builds itself, e.g. a namespace that contains itself.
constexpr int kMaxValueDepth = 256;

// The memory budget of a render: bytes held by live Values on this thread (each Value object
// plus its string), compared with `limit` while a render is active. Every copy of a string is
// counted, so ['x' * 30000000] * 1000 fails at the budget instead of allocating 30 GB.
struct RenderMemory {
  int64_t live = 0;    // bytes of live Values on this thread
  int64_t start = 0;   // `live` when the active render began
  int64_t limit = -1;  // < 0: no render active on this thread
};
inline thread_local RenderMemory render_memory;
// Adds `delta` bytes; when that takes an active render past its limit, undoes it and fails.
void chargeRenderMemory(int64_t delta);

class Value;
using List = std::vector<Value>;
struct Dict;
struct Callable;

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

class Value {
 public:
  Value() { render_memory.live += footprint(); }  // jinja2's default Undefined
  Value(bool b) : kind_(Kind::Bool), b_(b) { render_memory.live += footprint(); }        // NOLINT
  Value(int64_t i) : kind_(Kind::Int), i_(i) { render_memory.live += footprint(); }      // NOLINT
  Value(int i) : kind_(Kind::Int), i_(i) { render_memory.live += footprint(); }          // NOLINT
  Value(double f) : kind_(Kind::Float), f_(f) { render_memory.live += footprint(); }     // NOLINT
  Value(std::string s) : kind_(Kind::String), s_(std::move(s)) { chargeRenderMemory(footprint()); }  // NOLINT
  Value(const char* s) : kind_(Kind::String), s_(s) { chargeRenderMemory(footprint()); }  // NOLINT
  // Copies are charged to the render's memory budget (and may fail it); moves and destruction
  // only keep the count.
  Value(const Value& o);
  Value(Value&& o) noexcept;
  Value& operator=(const Value& o);
  Value& operator=(Value&& o) noexcept;
  ~Value() { render_memory.live -= footprint(); }

  // `hint` is the jinja2 message raised when the undefined value is used in a way that needs a value.
  static Value undefined(std::string hint);
  static Value none();
  static Value list(List items, bool tuple = false);
  static Value dict(std::shared_ptr<Dict> d);
  static Value dict();
  static Value ns(std::shared_ptr<Dict> d);
  static Value callable(std::shared_ptr<const Callable> fn);

  Kind kind() const { return kind_; }
  bool isUndefined() const { return kind_ == Kind::Undefined; }
  bool isNone() const { return kind_ == Kind::None; }
  bool isString() const { return kind_ == Kind::String; }
  bool isInt() const { return kind_ == Kind::Int || kind_ == Kind::Bool; }
  bool isNumber() const { return isInt() || kind_ == Kind::Float; }
  bool isList() const { return kind_ == Kind::List; }
  bool isTuple() const { return kind_ == Kind::List && tuple_; }
  bool isDict() const { return kind_ == Kind::Dict; }
  bool isMapping() const { return kind_ == Kind::Dict || kind_ == Kind::Namespace; }

  bool boolean() const { return b_; }
  int64_t integer() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }
  double number() const { return kind_ == Kind::Float ? f_ : static_cast<double>(integer()); }
  const std::string& str() const { return s_; }
  const List& items() const;
  const Dict& mapping() const;
  Dict& mutableNamespace() const;
  const Callable& fn() const { return *fn_; }
  const void* identity() const;
  // The message used when an Undefined is dereferenced: "'foo' is undefined".
  const std::string& undefinedHint() const { return s_; }

  // Python bool(x).
  bool truthy() const;
  // Python str(x), as jinja2 prints values.
  std::string toString() const;
  // Python repr(x), used for items inside containers.
  std::string repr() const;
  // Python type(x).__name__, for error messages.
  std::string typeName() const;

 private:
  // Sets depth_ from the children; fails beyond kMaxValueDepth so that no value is nested deeper than
  // the recursive algorithms (and destructors) can handle.
  void computeDepth();
  int64_t footprint() const { return static_cast<int64_t>(sizeof(Value) + s_.size()); }

  Kind kind_ = Kind::Undefined;
  bool tuple_ = false;
  uint16_t depth_ = 0;  // container nesting: 0 for scalars
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
};

// Insertion-ordered str -> Value map (Python dicts keep insertion order). Namespaces mutate one in place.
struct Dict {
  std::vector<std::pair<std::string, Value>> entries;
  std::unordered_map<std::string, size_t> index;

  const Value* find(const std::string& key) const;
  void set(const std::string& key, Value v);
};

// Positional and keyword call arguments.
struct Args {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;

  // Binds arguments to `names` by position or keyword (Python rules). Missing optional parameters come
  // back as Undefined; missing required ones, surplus and unknown keywords fail with a message naming `fn`.
  std::vector<Value> bind(const std::string& fn, const std::vector<const char*>& names,
                          size_t required) const;
};

struct Callable {
  std::string name;
  std::function<Value(const Args&)> call;
};

// Python ==.
bool equals(const Value& a, const Value& b);
// Python <, failing with a TypeError-like message for unorderable pairs.
bool lessThan(const Value& a, const Value& b);
// Python float repr (shortest round-trip digits, 'e' notation outside 1e-4 <= |x| < 1e16).
std::string formatFloat(double f);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=...); indent < 0 means None.
std::string toJson(const Value& v, int indent, const std::string& item_sep, const std::string& key_sep,
                   bool sort_keys);


}  // namespace ds::tpl

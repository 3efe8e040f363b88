// checkLaunches: the step plan against the launch ABI table, launch by launch.
#include "artifact/launch_check.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "abi/launch_abi.h"
#include "artifact/artifact_info.h"
#include "artifact/tensor_parallel.h"

namespace ds::artifact {
namespace {

static_assert(static_cast<int>(fb::Kernel_MAX) + 1 == static_cast<int>(abi::kNumKernelKinds),
              "abi::KernelKind and fb::Kernel list the same kernels");
static_assert(static_cast<int>(fb::Kernel_AllGather) == static_cast<int>(abi::KernelKind::AllGather) &&
                  static_cast<int>(fb::Kernel_MlaProject) == static_cast<int>(abi::KernelKind::MlaProject),
              "abi::KernelKind and fb::Kernel share their numbering");
static_assert(static_cast<int>(fb::Params_EmbedParams) == static_cast<int>(abi::ParamsTable::Embed) &&
                  static_cast<int>(fb::Params_MlaProjectParams) == static_cast<int>(abi::ParamsTable::MlaProject) &&
                  static_cast<int>(fb::Params_MoEExpertsParams) == static_cast<int>(abi::ParamsTable::MoEExperts),
              "abi::ParamsTable and fb::Params share their numbering");

// Largest trailing extent of a buffer row and of a KV dimension the runtime accepts: keeps every
// product the kernels form far from overflow.
constexpr int64_t kMaxRowElems = int64_t{1} << 31;
constexpr int64_t kMaxDim = int64_t{1} << 24;

struct Checker {
  const std::string& file;
  const fb::Artifact& meta;
  const fb::Plan& plan;
  std::string where;  // "plan.launches[i] (Kernel)"

  Status bad(const std::string& what) const {
    return dataLoss(file + ": invalid artifact metadata: " + where + " " + what);
  }
  const fb::Buffer& buf(int id) const { return *plan.buffers()->Get(static_cast<uint32_t>(id)); }
  std::vector<int64_t> cols(int id) const {
    const fb::Buffer& b = buf(id);
    return b.cols() ? std::vector<int64_t>(b.cols()->begin(), b.cols()->end()) : std::vector<int64_t>{};
  }
  int64_t rowElems(int id) const {
    int64_t n = 1;
    for (int64_t c : cols(id)) n *= c;
    return n;
  }
  const fb::Tensor* weight(const fb::Launch& l, size_t slot) const {
    if (!l.weights() || slot >= l.weights()->size()) return nullptr;
    const int32_t t = l.weights()->Get(static_cast<uint32_t>(slot));
    return t < 0 ? nullptr : meta.tensors()->Get(static_cast<uint32_t>(t));
  }
  // Logical [rows, cols] of a weight (per expert when stacked); a vector is 1 x n.
  static std::pair<int64_t, int64_t> matrix(const fb::Tensor& t) {
    if (!t.shape()) return {0, 0};
    std::vector<int64_t> s(t.shape()->begin(), t.shape()->end());
    if (t.experts() > 0 && !s.empty()) s.erase(s.begin());
    if (s.empty()) return {0, 0};
    return {s.size() == 1 ? 1 : s[0], s.back()};
  }
  static std::string str(const std::vector<int64_t>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + "]";
  }
  static bool finite(double x) { return std::isfinite(x); }
};

Status checkBuffers(const Checker& c) {
  const fb::Plan& plan = c.plan;
  for (uint32_t i = 0; i < plan.buffers()->size(); ++i) {
    const fb::Buffer* b = plan.buffers()->Get(i);
    const std::string where = "plan.buffers[" + std::to_string(i) + "]";
    auto bad = [&](const std::string& w) {
      return dataLoss(c.file + ": invalid artifact metadata: " + where + " " + w);
    };
    int64_t n = 1;
    if (b->cols())
      for (int64_t d : *b->cols()) {
        if (d < 1 || d > kMaxRowElems) return bad("has dimension " + std::to_string(d));
        n *= d;
        if (n > kMaxRowElems) return bad("has rows of more than 2^31 elements");
      }
    if (b->rows() == fb::RowSpace_Fixed && (b->fixed_rows() < 0 || b->fixed_rows() > kMaxRowElems))
      return bad("has " + std::to_string(b->fixed_rows()) + " fixed rows");
    const uint64_t row_bytes = static_cast<uint64_t>(n) * dtypeSize(b->dtype());
    if (b->alias_of() >= 0) {
      const fb::Buffer* root = plan.buffers()->Get(static_cast<uint32_t>(b->alias_of()));
      if (root->alias_of() >= 0) return bad("aliases a view (views name the buffer owning the memory)");
      if (root->rows() != b->rows() || c.rowElems(b->alias_of()) * dtypeSize(root->dtype()) != row_bytes)
        return bad("views buffer " + std::to_string(b->alias_of()) + " with other rows");
      continue;
    }
    if (b->arena_offset() >= 0) {
      if (b->rows() == fb::RowSpace_Fixed) return bad("has fixed rows but an arena offset");
      // Kernels access elements as their type: an offset that is not a multiple of the element
      // size would make every access misaligned.
      if (b->arena_offset() % static_cast<int64_t>(dtypeSize(b->dtype())) != 0)
        return bad("at arena offset " + std::to_string(b->arena_offset()) + " is not aligned to its " +
                   std::to_string(dtypeSize(b->dtype())) + "-byte elements");
      const int64_t arena = b->rows() == fb::RowSpace_Tokens ? plan.arena_bytes_per_token()
                                                             : plan.arena_bytes_per_logit_row();
      if (b->arena_offset() > arena || row_bytes > static_cast<uint64_t>(arena - b->arena_offset()))
        return bad("at arena offset " + std::to_string(b->arena_offset()) + " with " +
                   std::to_string(row_bytes) + " bytes per row overruns its arena of " +
                   std::to_string(arena) + " bytes per row");
    }
  }
  return Status::ok();
}

Status checkKvSpec(const std::string& file, const fb::KVCacheSpec* kv) {
  if (!kv || kv->kind() == fb::KVKind_None) return Status::ok();
  auto bad = [&](const std::string& w) {
    return dataLoss(file + ": invalid artifact metadata: plan.kv_cache " + w);
  };
  const auto dims = kv->kind() == fb::KVKind_GQA
                        ? std::vector<std::pair<const char*, int64_t>>{{"kv_heads", kv->kv_heads()},
                                                                        {"head_dim", kv->head_dim()},
                                                                        {"v_dim", kv->v_dim()}}
                        : std::vector<std::pair<const char*, int64_t>>{{"rank", kv->rank()},
                                                                        {"rope_dim", kv->rope_dim()}};
  for (const auto& [name, v] : dims)
    if (v < 1 || v > kMaxDim) return bad(std::string(name) + " " + std::to_string(v) + " is outside [1, 2^24]");
  if (kv->num_layers() < 1 || kv->num_layers() > abi::kMaxKvLayers)
    return bad("num_layers " + std::to_string(kv->num_layers()) + " is outside [1, " +
               std::to_string(abi::kMaxKvLayers) + "]");
  if (kv->block_size() < 1 || kv->block_size() > abi::kMaxKvBlockSize)
    return bad("block_size " + std::to_string(kv->block_size()) + " is outside [1, " +
               std::to_string(abi::kMaxKvBlockSize) + "]");
  if (kvBytesPerSlot(*kv) > (uint64_t{1} << 32)) return bad("slot is larger than 4 GiB");
  return Status::ok();
}

Status checkOne(Checker& c, const fb::Launch& l, const abi::KernelSignature& sig, int tp) {
  const size_t nin = l.inputs() ? l.inputs()->size() : 0;
  const size_t nout = l.outputs() ? l.outputs()->size() : 0;
  if (nin != sig.num_inputs || nout != sig.num_outputs)
    return c.bad("has " + std::to_string(nin) + " inputs and " + std::to_string(nout) +
                 " outputs; " + abi::describe(sig) + " takes " + std::to_string(sig.num_inputs) +
                 " and " + std::to_string(sig.num_outputs));
  auto checkOperand = [&](const abi::Operand& o, int id, const char* side) -> Status {
    const fb::Buffer& b = c.buf(id);
    const bool index = b.dtype() == fb::DType_I32;
    const bool floating = b.dtype() == fb::DType_F32 || b.dtype() == fb::DType_F16 ||
                          b.dtype() == fb::DType_BF16;
    if (o.kind == abi::OperandKind::Index ? !index : !floating)
      return c.bad(std::string(side) + " '" + o.name + "' is buffer " + std::to_string(id) +
                   " of dtype " + fb::EnumNameDType(b.dtype()) + ", expected " +
                   (o.kind == abi::OperandKind::Index ? "I32 indices" : "a float activation"));
    const size_t rank = b.cols() ? b.cols()->size() : 0;
    if (o.trailing_rank >= 0 && rank != static_cast<size_t>(o.trailing_rank))
      return c.bad(std::string(side) + " '" + o.name + "' is buffer " + std::to_string(id) +
                   " with rows of shape " + Checker::str(c.cols(id)) + ", expected " +
                   std::to_string(o.trailing_rank) + " trailing dimensions");
    return Status::ok();
  };
  for (size_t i = 0; i < nin; ++i)
    DS_RETURN_IF_ERROR(checkOperand(sig.inputs[i], l.inputs()->Get(i), "input"));
  for (size_t i = 0; i < nout; ++i)
    DS_RETURN_IF_ERROR(checkOperand(sig.outputs[i], l.outputs()->Get(i), "output"));

  // Weight slots: -1 marks an absent optional slot; trailing optional slots may be left out.
  const size_t nw = l.weights() ? l.weights()->size() : 0;
  bool present[16] = {};
  if (nw > 16) return c.bad("has " + std::to_string(nw) + " weights");
  for (size_t i = 0; i < nw; ++i) {
    const int32_t t = l.weights()->Get(static_cast<uint32_t>(i));
    if (t < -1) return c.bad("weight " + std::to_string(i) + " is " + std::to_string(t));
    present[i] = t >= 0;
  }
  if (std::string e = abi::checkWeightSlots(sig, present, nw); !e.empty())
    return c.bad("weights: " + e + " (" + abi::describe(sig) + ")");
  // Each present weight has the form its slot takes (kernels read vectors as f32 arrays).
  for (size_t i = 0; i < nw; ++i) {
    const fb::Tensor* t = c.weight(l, i);
    if (!t) continue;
    const size_t rank = t->shape() ? t->shape()->size() : 0;
    const abi::WeightShape want = sig.weights[i].shape;
    const bool ok = want == abi::WeightShape::Vector    ? rank == 1 && t->experts() == 0
                    : want == abi::WeightShape::Experts ? rank == 3 && t->experts() > 0
                                                        : rank == 2 && t->experts() == 0;
    if (!ok)
      return c.bad("weight " + std::string(sig.weights[i].name) + " is tensor " +
                   std::to_string(l.weights()->Get(static_cast<uint32_t>(i))) + " '" +
                   t->name()->str() + "' of rank " + std::to_string(rank) + ", expected " +
                   (want == abi::WeightShape::Vector    ? "a vector"
                    : want == abi::WeightShape::Experts ? "stacked experts [experts, rows, cols]"
                                                        : "a matrix"));
  }

  // Params: the table the kernel takes (absent only where every field has its default).
  const auto want = static_cast<fb::Params>(sig.params_table);
  if (l.params_type() != want && !(l.params_type() == fb::Params_NONE && !sig.params_table_required))
    return c.bad(l.params_type() == fb::Params_NONE
                     ? std::string("has no parameters; it takes ") + fb::EnumNameParams(want)
                     : std::string("carries ") + fb::EnumNameParams(l.params_type()) +
                           ", the kernel takes " + fb::EnumNameParams(want));
  if (l.params_type() != fb::Params_NONE && !l.params()) return c.bad("has an empty params table");

  const int32_t in0 = nin ? l.inputs()->Get(0) : -1, out0 = nout ? l.outputs()->Get(0) : -1;
  auto in = [&](size_t i) { return l.inputs()->Get(static_cast<uint32_t>(i)); };
  auto out = [&](size_t i) { return l.outputs()->Get(static_cast<uint32_t>(i)); };
  const fb::KVCacheSpec* kv = c.plan.kv_cache();
  auto checkRope = [&](const fb::RopeParams* r, int64_t head_dim) -> Status {
    if (!r) return c.bad("has no rope parameters");
    if (r->dim() < 2 || r->dim() % 2 != 0 || r->dim() > head_dim)
      return c.bad("rotates " + std::to_string(r->dim()) + " channels of heads of " +
                   std::to_string(head_dim) + " (an even count in [2, head_dim])");
    if (!(r->theta() > 0) || !Checker::finite(r->theta()) || r->scaling() > fb::RopeScaling_MAX ||
        !Checker::finite(r->factor()))
      return c.bad("has rope theta " + std::to_string(r->theta()) + " or scaling out of range");
    return Status::ok();
  };
  auto checkEps = [&](float eps) -> Status {
    if (!(eps >= 0) || !std::isfinite(eps)) return c.bad("has eps " + std::to_string(eps));
    return Status::ok();
  };
  auto checkLayer = [&](int64_t layer, fb::KVKind kind) -> Status {
    if (!kv || kv->kind() != kind)
      return c.bad(std::string("needs a ") + fb::EnumNameKVKind(kind) + " KV cache, the plan has " +
                   (kv ? fb::EnumNameKVKind(kv->kind()) : "none"));
    if (layer < 0 || layer >= kv->num_layers())
      return c.bad("names KV layer " + std::to_string(layer) + " of " +
                   std::to_string(kv->num_layers()));
    return Status::ok();
  };
  // Weight slot `slot` (when present) is [rows, cols] (per expert when stacked; a vector 1 x n).
  auto expectWeight = [&](size_t slot, int64_t rows, int64_t cols) -> Status {
    const fb::Tensor* t = c.weight(l, slot);
    if (!t) return Status::ok();
    const auto [r, k] = Checker::matrix(*t);
    if (r != rows || k != cols)
      return c.bad("weight " + std::string(sig.weights[slot].name) + " is [" + std::to_string(r) +
                   ", " + std::to_string(k) + "], expected [" + std::to_string(rows) + ", " +
                   std::to_string(cols) + "]");
    return Status::ok();
  };
  auto expectCols = [&](int id, const std::vector<int64_t>& want, const char* name) -> Status {
    if (c.cols(id) != want)
      return c.bad(std::string(name) + " has rows of shape " + Checker::str(c.cols(id)) +
                   ", expected " + Checker::str(want));
    return Status::ok();
  };

  switch (l.kernel()) {
    case fb::Kernel_RmsNorm:
    case fb::Kernel_AddRmsNorm: {
      DS_RETURN_IF_ERROR(checkEps(l.params_as_NormParams()->eps()));
      const int64_t h = Checker::matrix(*c.weight(l, 0)).second;
      if (h < 1 || c.rowElems(in0) % h != 0)
        return c.bad("normalizes rows of " + std::to_string(c.rowElems(in0)) +
                     " elements with a weight of " + std::to_string(h));
      for (size_t i = 0; i < nin + nout; ++i) {
        const int id = i < nin ? in(i) : out(i - nin);
        if (c.rowElems(id) != c.rowElems(in0))
          return c.bad("operands have rows of " + std::to_string(c.rowElems(id)) + " and " +
                       std::to_string(c.rowElems(in0)) + " elements");
      }
      break;
    }
    case fb::Kernel_Add:
    case fb::Kernel_SwiGLU:
      if (c.rowElems(in(0)) != c.rowElems(out0) || c.rowElems(in(1)) != c.rowElems(out0))
        return c.bad("operands have rows of different sizes");
      break;
    case fb::Kernel_AllReduce:
      if (c.rowElems(in0) != c.rowElems(out0)) return c.bad("operands have rows of different sizes");
      break;
    case fb::Kernel_AllGather:
      if (c.rowElems(out0) != c.rowElems(in0) * tp)
        return c.bad("writes rows of " + std::to_string(c.rowElems(out0)) + " elements, expected " +
                     std::to_string(c.rowElems(in0)) + " x " + std::to_string(tp) + " ranks");
      break;
    case fb::Kernel_Embed: {
      const auto [rows, cols] = Checker::matrix(*c.weight(l, 0));
      if (c.rowElems(out0) != cols)
        return c.bad("writes rows of " + std::to_string(c.rowElems(out0)) + " from a table of " +
                     std::to_string(cols) + " columns");
      const fb::EmbedParams* p = l.params_as_EmbedParams();
      const int64_t per_rank = p ? p->rows_per_rank() : 0;
      if (per_rank < 0) return c.bad("has rows_per_rank " + std::to_string(per_rank));
      const int64_t vocab = c.meta.model() ? c.meta.model()->vocab_size() : 0;
      if (per_rank == 0 && rows < vocab)
        return c.bad("reads a table of " + std::to_string(rows) + " rows for a vocabulary of " +
                     std::to_string(vocab));
      break;
    }
    case fb::Kernel_Linear:
    case fb::Kernel_Logits: {
      const auto [rows, cols] = Checker::matrix(*c.weight(l, 0));
      if (c.rowElems(in0) != cols || c.rowElems(out0) != rows)
        return c.bad("maps rows of " + std::to_string(c.rowElems(in0)) + " to " +
                     std::to_string(c.rowElems(out0)) + " elements with a weight of [" +
                     std::to_string(rows) + ", " + std::to_string(cols) + "]");
      if (const fb::Tensor* bias = c.weight(l, 1); bias && Checker::matrix(*bias) != std::make_pair(int64_t{1}, rows))
        return c.bad("has a bias that is not a vector of " + std::to_string(rows));
      break;
    }
    case fb::Kernel_SwiGLULinear: {
      const int64_t n = c.rowElems(out0);
      const bool merged = l.weights()->Get(0) == l.weights()->Get(1);
      for (size_t s = 0; s < 2; ++s) {
        const auto [rows, cols] = Checker::matrix(*c.weight(l, s));
        if (cols != c.rowElems(in0) || rows != (merged ? 2 * n : n))
          return c.bad("weight " + std::string(sig.weights[s].name) + " is [" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "] for rows of " +
                       std::to_string(c.rowElems(in0)) + " -> " + std::to_string(n));
      }
      break;
    }
    case fb::Kernel_Slice: {
      const fb::SliceParams* p = l.params_as_SliceParams();
      const std::vector<int64_t> x = c.cols(in0);
      const int64_t last = x.empty() ? 1 : x.back();
      if (p->offset() < 0 || p->size() < 1 || p->offset() > last || p->size() > last - p->offset())
        return c.bad("slices [" + std::to_string(p->offset()) + ", +" + std::to_string(p->size()) +
                     ") of rows ending in " + std::to_string(last));
      if (c.rowElems(out0) * last != c.rowElems(in0) * p->size())
        return c.bad("writes rows of " + std::to_string(c.rowElems(out0)) + " elements");
      break;
    }
    case fb::Kernel_Rope: {
      const std::vector<int64_t> x = c.cols(in0);
      DS_RETURN_IF_ERROR(expectCols(out0, x, "output 'y'"));
      DS_RETURN_IF_ERROR(checkRope(l.params_as_RopeParams(), x[1]));
      break;
    }
    case fb::Kernel_QKVRope: {
      const std::vector<int64_t> q = c.cols(out(0)), k = c.cols(out(1)), v = c.cols(out(2));
      if (q[1] != k[1] || k[0] != v[0])
        return c.bad("writes q " + Checker::str(q) + ", k " + Checker::str(k) + ", v " +
                     Checker::str(v) + " (q and k share the head size, k and v the heads)");
      DS_RETURN_IF_ERROR(checkRope(l.params_as_RopeParams(), q[1]));
      const int64_t K = c.rowElems(in0);
      const bool merged = l.weights()->Get(0) == l.weights()->Get(1);
      for (size_t s = 0; s < 3; ++s) {
        const int64_t n = merged ? q[0] * q[1] + k[0] * k[1] + v[0] * v[1] : c.rowElems(out(s));
        const auto [rows, cols] = Checker::matrix(*c.weight(l, s));
        if (rows != n || cols != K)
          return c.bad("weight " + std::string(sig.weights[s].name) + " is [" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "], expected [" +
                       std::to_string(n) + ", " + std::to_string(K) + "]");
        DS_RETURN_IF_ERROR(expectWeight(s + 3, 1, n));  // the bias, when present
      }
      break;
    }
    case fb::Kernel_Attention: {
      const fb::AttentionParams* p = l.params_as_AttentionParams();
      DS_RETURN_IF_ERROR(checkLayer(p->layer(), fb::KVKind_GQA));
      if (!std::isfinite(p->scale()) || p->sliding_window() < 0)
        return c.bad("has scale " + std::to_string(p->scale()) + " or sliding window " +
                     std::to_string(p->sliding_window()) + " out of range");
      const std::vector<int64_t> q = c.cols(in(0));
      DS_RETURN_IF_ERROR(expectCols(in(1), {kv->kv_heads(), kv->head_dim()}, "input 'k'"));
      DS_RETURN_IF_ERROR(expectCols(in(2), {kv->kv_heads(), kv->v_dim()}, "input 'v'"));
      if (q[1] != kv->head_dim() || q[0] % kv->kv_heads() != 0)
        return c.bad("has q heads " + Checker::str(q) + " for a cache of " +
                     std::to_string(kv->kv_heads()) + " heads of " + std::to_string(kv->head_dim()));
      DS_RETURN_IF_ERROR(expectCols(out0, {q[0], kv->v_dim()}, "output 'y'"));
      break;
    }
    case fb::Kernel_MlaAttention: {
      const fb::MlaParams* p = l.params_as_MlaParams();
      DS_RETURN_IF_ERROR(checkLayer(p->layer(), fb::KVKind_MLA));
      if (!std::isfinite(p->scale()) || p->heads() < 1 || p->nope_dim() < 1 || p->v_dim() < 1 ||
          p->heads() > kMaxDim || p->nope_dim() > kMaxDim || p->v_dim() > kMaxDim)
        return c.bad("has heads, nope_dim, v_dim or scale out of range");
      DS_RETURN_IF_ERROR(expectCols(in(0), {p->heads(), p->nope_dim()}, "input 'q_nope'"));
      DS_RETURN_IF_ERROR(expectCols(in(1), {p->heads(), kv->rope_dim()}, "input 'q_rope'"));
      DS_RETURN_IF_ERROR(expectCols(in(2), {kv->rank()}, "input 'c_kv'"));
      DS_RETURN_IF_ERROR(expectCols(in(3), {kv->rope_dim()}, "input 'k_rope'"));
      DS_RETURN_IF_ERROR(expectCols(out0, {p->heads(), p->v_dim()}, "output 'y'"));
      const auto [rows, cols] = Checker::matrix(*c.weight(l, 0));
      if (rows != p->heads() * (p->nope_dim() + p->v_dim()) || cols != kv->rank())
        return c.bad("weight kv_b is [" + std::to_string(rows) + ", " + std::to_string(cols) +
                     "], expected [heads x (nope_dim + v_dim), rank]");
      break;
    }
    case fb::Kernel_MlaProject: {
      const fb::MlaProjectParams* p = l.params_as_MlaProjectParams();
      DS_RETURN_IF_ERROR(checkEps(p->eps()));
      const std::vector<int64_t> qn = c.cols(out(0)), qr = c.cols(out(1));
      if (qn[0] != qr[0] || c.cols(out(3)) != std::vector<int64_t>{qr[1]})
        return c.bad("writes q_nope " + Checker::str(qn) + ", q_rope " + Checker::str(qr) +
                     ", k_rope " + Checker::str(c.cols(out(3))));
      DS_RETURN_IF_ERROR(checkRope(p->rope(), qr[1]));
      const int64_t H = c.rowElems(in0), rank = c.rowElems(out(2)), rd = qr[1];
      int64_t q_in = H;
      if (const fb::Tensor* qa = c.weight(l, 0)) {
        q_in = Checker::matrix(*qa).first;
        DS_RETURN_IF_ERROR(expectWeight(0, q_in, H));
        DS_RETURN_IF_ERROR(expectWeight(1, 1, q_in));
      }
      DS_RETURN_IF_ERROR(expectWeight(2, qn[0] * (qn[1] + rd), q_in));
      DS_RETURN_IF_ERROR(expectWeight(3, rank + rd, H));
      DS_RETURN_IF_ERROR(expectWeight(4, 1, rank));
      break;
    }
    case fb::Kernel_MoEGate: {
      const fb::MoEGateParams* p = l.params_as_MoEGateParams();
      const int64_t experts = Checker::matrix(*c.weight(l, 0)).first;
      if (p->top_k() < 1 || p->top_k() > experts || p->n_group() < 1 || p->topk_group() < 1 ||
          p->topk_group() > p->n_group() || experts % p->n_group() != 0 ||
          p->scoring() > fb::MoeScoring_MAX || p->method() > fb::MoeTopkMethod_MAX)
        return c.bad("routes top " + std::to_string(p->top_k()) + " of " + std::to_string(experts) +
                     " experts in " + std::to_string(p->n_group()) + " groups (top " +
                     std::to_string(p->topk_group()) + "): out of range");
      DS_RETURN_IF_ERROR(expectCols(out(0), {p->top_k()}, "output 'weights'"));
      DS_RETURN_IF_ERROR(expectCols(out(1), {p->top_k()}, "output 'ids'"));
      if (Checker::matrix(*c.weight(l, 0)).second != c.rowElems(in0))
        return c.bad("gate weight does not match rows of " + std::to_string(c.rowElems(in0)));
      DS_RETURN_IF_ERROR(expectWeight(1, 1, experts));  // correction bias
      break;
    }
    case fb::Kernel_MoEExperts: {
      if (c.cols(in(1)) != c.cols(in(2)))
        return c.bad("has routing weights " + Checker::str(c.cols(in(1))) + " and ids " +
                     Checker::str(c.cols(in(2))));
      const fb::Tensor* g = c.weight(l, 0);
      for (size_t s = 1; s < 3; ++s)
        if (c.weight(l, s)->experts() != g->experts() || g->experts() < 1)
          return c.bad("has expert weights with different expert counts");
      if (c.rowElems(in0) != c.rowElems(out0)) return c.bad("operands have rows of different sizes");
      if (const fb::MoEExpertsParams* p = l.params_as_MoEExpertsParams();
          p && p->experts_per_rank() != 0 && p->experts_per_rank() != g->experts())
        return c.bad("has experts_per_rank " + std::to_string(p->experts_per_rank()) +
                     " but its expert weights hold " + std::to_string(g->experts()) + " experts");
      // Routing ids are data: the kernels skip ids outside [0, experts) (expert parallelism
      // drops remote experts that way), so they need no plan-level check.
      const int64_t H = c.rowElems(in0), I = Checker::matrix(*g).first;
      DS_RETURN_IF_ERROR(expectWeight(0, I, H));
      DS_RETURN_IF_ERROR(expectWeight(1, I, H));
      DS_RETURN_IF_ERROR(expectWeight(2, H, I));
      if (const fb::Tensor* sg = c.weight(l, 3)) {
        const int64_t Is = Checker::matrix(*sg).first;
        DS_RETURN_IF_ERROR(expectWeight(3, Is, H));
        DS_RETURN_IF_ERROR(expectWeight(4, Is, H));
        DS_RETURN_IF_ERROR(expectWeight(5, H, Is));
      }
      break;
    }
    default:
      break;
  }
  return Status::ok();
}

}  // namespace

Status checkLaunches(const std::string& file, const fb::Artifact& meta) {
  const fb::Plan* plan = meta.plan();
  if (!plan || !plan->buffers() || !plan->launches()) return Status::ok();
  Checker c{file, meta, *plan, ""};
  if (plan->tp_size() < 1 || plan->tp_size() > kMaxTensorParallel)
    return dataLoss(file + ": invalid artifact metadata: plan.tp_size " +
                    std::to_string(plan->tp_size()) + " is outside [1, " +
                    std::to_string(kMaxTensorParallel) + "]");
  DS_RETURN_IF_ERROR(checkBuffers(c));
  DS_RETURN_IF_ERROR(checkKvSpec(file, plan->kv_cache()));
  const int tp = std::max(1, plan->tp_size());
  // The step's inputs and output.
  const int64_t vocab = meta.model() ? meta.model()->vocab_size() : 0;
  const struct {
    const char* name;
    int32_t id;
    fb::RowSpace rows;
    fb::DType dtype;
  } entries[] = {{"token_ids", plan->token_ids(), fb::RowSpace_Tokens, fb::DType_I32},
                 {"positions", plan->positions(), fb::RowSpace_Tokens, fb::DType_I32},
                 {"logit_rows", plan->logit_rows(), fb::RowSpace_LogitRows, fb::DType_I32},
                 {"logits", plan->logits(), fb::RowSpace_LogitRows, fb::DType_F32}};
  for (const auto& e : entries) {
    c.where = std::string("plan.") + e.name;
    if (e.id < 0 || static_cast<uint32_t>(e.id) >= plan->buffers()->size())
      return c.bad("names no buffer");
    const fb::Buffer& b = c.buf(e.id);
    const bool logits = e.dtype == fb::DType_F32;
    if (b.rows() != e.rows || b.dtype() != e.dtype ||
        (logits ? c.cols(e.id) != std::vector<int64_t>{vocab} : !c.cols(e.id).empty()))
      return c.bad("is buffer " + std::to_string(e.id) + " of " + fb::EnumNameDType(b.dtype()) +
                   " rows of shape " + Checker::str(c.cols(e.id)) + " in row space " +
                   fb::EnumNameRowSpace(b.rows()) + ", expected " + fb::EnumNameDType(e.dtype) +
                   (logits ? " rows of [vocab_size = " + std::to_string(vocab) + "]" : " scalars") +
                   " in " + fb::EnumNameRowSpace(e.rows));
  }
  for (uint32_t i = 0; i < plan->launches()->size(); ++i) {
    const fb::Launch* l = plan->launches()->Get(i);
    c.where = "plan.launches[" + std::to_string(i) + "] (" + fb::EnumNameKernel(l->kernel()) + ")";
    const abi::KernelSignature* sig = abi::signature(static_cast<uint32_t>(l->kernel()));
    if (!sig) return c.bad("has an unknown kernel");
    DS_RETURN_IF_ERROR(checkOne(c, *l, *sig, tp));
  }
  return Status::ok();
}

}  // namespace ds::artifact

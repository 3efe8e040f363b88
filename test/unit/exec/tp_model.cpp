// writeTpModel: slices the weights per rank and writes the artifact with ArtifactWriter.
#include "tp_model.h"

#include <cmath>
#include <cstring>
#include <random>

#include "artifact/artifact_writer.h"
#include "artifact/format.h"

namespace ds::testing {
namespace {

std::vector<float> randn(std::mt19937& rng, int64_t n, float stddev) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<uint8_t> asBytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Rows [r0, r1) or columns [c0, c1) of a row-major [rows, cols] matrix.
std::vector<float> rowSlice(const std::vector<float>& m, int64_t cols, int64_t r0, int64_t r1) {
  return std::vector<float>(m.begin() + r0 * cols, m.begin() + r1 * cols);
}
std::vector<float> colSlice(const std::vector<float>& m, int64_t rows, int64_t cols, int64_t c0,
                            int64_t c1) {
  std::vector<float> out;
  for (int64_t r = 0; r < rows; ++r)
    out.insert(out.end(), m.begin() + r * cols + c0, m.begin() + r * cols + c1);
  return out;
}

enum class Split { Replicated, Rows, Cols };

class TableBuilder {
 public:
  TableBuilder(int tp, std::vector<TpTensor>* t) : tp_(tp), t_(t) {}

  // Adds `m` ([rows, cols], or a vector when rows == 0) split `how` over the ranks; returns the
  // rank-0 entry. int8: per-row scales, each shard with its own scale tensor.
  int32_t add(const std::string& name, const std::vector<float>& m, int64_t rows, int64_t cols,
              Split how, bool int8 = false) {
    if (how == Split::Replicated || tp_ == 1) return addOne(name, m, rows, cols, int8, 0);
    std::vector<int32_t> ids;
    for (int r = 0; r < tp_; ++r) {
      const int64_t n = how == Split::Rows ? (rows ? rows : cols) : cols;
      const int64_t lo = n * r / tp_, hi = n * (r + 1) / tp_;
      if (rows == 0)  // a sharded vector (a bias)
        ids.push_back(addOne(name, std::vector<float>(m.begin() + lo, m.begin() + hi), 0, hi - lo, false, r));
      else if (how == Split::Rows)
        ids.push_back(addOne(name, rowSlice(m, cols, lo, hi), hi - lo, cols, int8, r));
      else
        ids.push_back(addOne(name, colSlice(m, rows, cols, lo, hi), rows, hi - lo, int8, r));
    }
    for (int32_t id : ids) (*t_)[ids[0]].shards.push_back(static_cast<uint32_t>(id));
    return ids[0];
  }

 private:
  int32_t addOne(const std::string& name, const std::vector<float>& m, int64_t rows, int64_t cols,
                 bool int8, int rank) {
    TpTensor t;
    t.name = name;
    t.tp_rank = rank;
    t.shape = rows ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
    if (!int8) {
      t.bytes = asBytes(m);
    } else {
      std::vector<float> scale(rows);
      t.dtype = fb::DType_I8;
      t.quant = fb::QuantKind_Int8PerChannel;
      t.bytes.resize(rows * cols);
      for (int64_t r = 0; r < rows; ++r) {
        float amax = 0.0f;
        for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(m[r * cols + c]));
        scale[r] = amax > 0 ? amax / 127.0f : 1.0f;
        for (int64_t c = 0; c < cols; ++c)
          t.bytes[r * cols + c] = static_cast<uint8_t>(static_cast<int8_t>(std::lround(m[r * cols + c] / scale[r])));
      }
      TpTensor s;
      s.name = name + ".qscale";
      s.tp_rank = rank;
      s.shape = {rows};
      s.bytes = asBytes(scale);
      t_->push_back(s);
      t.qscale = static_cast<int32_t>(t_->size() - 1);
    }
    t_->push_back(std::move(t));
    return static_cast<int32_t>(t_->size() - 1);
  }

  int tp_;
  std::vector<TpTensor>* t_;
};

}  // namespace

TpWeights randomTpWeights(const TpDims& d, uint32_t seed) {
  std::mt19937 rng(seed);
  TpWeights w;
  w.dims = d;
  const float sh = 1.0f / std::sqrt(static_cast<float>(d.hidden));
  w.embed = randn(rng, d.vocab * d.hidden, 1.0f);
  w.lm_head = randn(rng, d.vocab * d.hidden, 1.0f);
  w.final_norm = randn(rng, d.hidden, 0.2f);
  for (float& x : w.final_norm) x += 1.0f;
  for (int64_t l = 0; l < d.layers; ++l) {
    TpWeights::Layer L;
    L.norm1 = randn(rng, d.hidden, 0.2f);
    L.norm2 = randn(rng, d.hidden, 0.2f);
    for (float& x : L.norm1) x += 1.0f;
    for (float& x : L.norm2) x += 1.0f;
    L.wq = randn(rng, d.heads * d.head_dim * d.hidden, sh);
    L.bq = randn(rng, d.heads * d.head_dim, 0.1f);
    L.wk = randn(rng, d.kv_heads * d.head_dim * d.hidden, sh);
    L.wv = randn(rng, d.kv_heads * d.head_dim * d.hidden, sh);
    L.wo = randn(rng, d.hidden * d.heads * d.head_dim, 1.0f / std::sqrt(float(d.heads * d.head_dim)));
    L.gate = randn(rng, d.inter * d.hidden, sh);
    L.up = randn(rng, d.inter * d.hidden, sh);
    L.down = randn(rng, d.hidden * d.inter, 1.0f / std::sqrt(static_cast<float>(d.inter)));
    w.layers.push_back(std::move(L));
  }
  return w;
}

Status writeTpModel(const std::string& path, const TpWeights& w, const TpBuild& build) {
  const TpDims& d = w.dims;
  const int tp = build.tp;
  const int64_t hq = d.heads / tp, hkv = d.kv_heads / tp, il = d.inter / tp, vl = d.vocab / tp;
  const int64_t qdim = d.heads * d.head_dim, kvdim = d.kv_heads * d.head_dim;

  std::vector<TpTensor> tensors;
  TableBuilder tb(tp, &tensors);
  const int32_t embed = tb.add("embed", w.embed, d.vocab, d.hidden, Split::Rows);
  struct LayerIds { int32_t norm1, wq, bq, wk, wv, wo, norm2, gate, up, down; };
  std::vector<LayerIds> ids;
  for (int64_t l = 0; l < d.layers; ++l) {
    const auto& L = w.layers[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    LayerIds x;
    x.norm1 = tb.add(p + "norm1", L.norm1, 0, d.hidden, Split::Replicated);
    x.wq = tb.add(p + "wq", L.wq, qdim, d.hidden, Split::Rows);
    x.bq = tb.add(p + "bq", L.bq, 0, qdim, Split::Rows);
    x.wk = tb.add(p + "wk", L.wk, kvdim, d.hidden, Split::Rows);
    x.wv = tb.add(p + "wv", L.wv, kvdim, d.hidden, Split::Rows);
    x.wo = tb.add(p + "wo", L.wo, d.hidden, qdim, Split::Cols);
    x.norm2 = tb.add(p + "norm2", L.norm2, 0, d.hidden, Split::Replicated);
    x.gate = tb.add(p + "gate", L.gate, d.inter, d.hidden, Split::Rows, build.int8_gate);
    x.up = tb.add(p + "up", L.up, d.inter, d.hidden, Split::Rows);
    x.down = tb.add(p + "down", L.down, d.hidden, d.inter, Split::Cols);
    ids.push_back(x);
  }
  const int32_t final_norm = tb.add("final_norm", w.final_norm, 0, d.hidden, Split::Replicated);
  const int32_t lm_head = tb.add("lm_head", w.lm_head, d.vocab, d.hidden, Split::Rows);

  int32_t tp_size = tp;
  int64_t rows_per_rank = tp > 1 ? vl : 0;
  if (build.mutate) build.mutate(tensors, tp_size, rows_per_rank);

  auto writer = artifact::ArtifactWriter::create(path);
  if (!writer.isOk()) return writer.status();
  for (const TpTensor& t : tensors) {
    auto seg = (*writer)->addSegmentFromMemory(t.bytes.data(), t.bytes.size());
    if (!seg.isOk()) return seg.status();
  }

  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::Tensor>> table;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TpTensor& t = tensors[i];
    table.push_back(fb::CreateTensorDirect(
        b, t.name.c_str(), t.name.c_str(), t.dtype, &t.shape, static_cast<uint32_t>(i),
        t.bytes.size(), -1, nullptr, 0, t.tp_rank, t.quant, 0, t.qscale, -1,
        t.shards.empty() ? nullptr : &t.shards));
  }
  std::vector<flatbuffers::Offset<fb::Segment>> segs;
  for (const auto& s : (*writer)->segments()) segs.push_back(fb::CreateSegment(b, s.offset, s.size, s.xxh64));

  enum : int32_t { kIds, kPos, kX, kH, kQ, kK, kV, kAttn, kO, kGate, kUp, kAct, kDown, kRows,
                   kLogitsLocal, kLogits };
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers;
  auto buf = [&](fb::RowSpace rows, std::vector<int64_t> cols, fb::DType dt = fb::DType_F32) {
    buffers.push_back(fb::CreateBufferDirect(b, rows, 0, &cols, dt));
  };
  const auto Tok = fb::RowSpace_Tokens;
  buf(Tok, {}, fb::DType_I32);
  buf(Tok, {}, fb::DType_I32);
  buf(Tok, {d.hidden});
  buf(Tok, {d.hidden});
  buf(Tok, {hq, d.head_dim});
  buf(Tok, {hkv, d.head_dim});
  buf(Tok, {hkv, d.head_dim});
  buf(Tok, {hq, d.head_dim});
  buf(Tok, {d.hidden});
  buf(Tok, {il});
  buf(Tok, {il});
  buf(Tok, {il});
  buf(Tok, {d.hidden});
  buf(fb::RowSpace_LogitRows, {}, fb::DType_I32);
  buf(fb::RowSpace_LogitRows, {vl});
  buf(fb::RowSpace_LogitRows, {build.gathered_cols > 0 ? build.gathered_cols : d.vocab});

  std::vector<flatbuffers::Offset<fb::Launch>> launches;
  auto launch = [&](fb::Kernel k, std::vector<int32_t> in, std::vector<int32_t> out,
                    std::vector<int32_t> wts, fb::Params pt = fb::Params_NONE,
                    flatbuffers::Offset<void> p = 0) {
    launches.push_back(fb::CreateLaunchDirect(b, k, &in, &out, &wts, pt, p));
  };
  auto norm = [&] { return fb::CreateNormParams(b, 1e-5f).Union(); };
  auto rope = [&] { return fb::CreateRopeParams(b, 10000.0, d.head_dim).Union(); };
  if (tp == 1) {
    launch(fb::Kernel_Embed, {kIds}, {kX}, {embed});
  } else {
    launch(fb::Kernel_Embed, {kIds}, {kH}, {embed}, fb::Params_EmbedParams,
           fb::CreateEmbedParams(b, rows_per_rank).Union());
    launch(fb::Kernel_AllReduce, {kH}, {kX}, {});  // out of place
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.head_dim));
  for (int64_t l = 0; l < d.layers; ++l) {
    const LayerIds& x = ids[l];
    launch(fb::Kernel_RmsNorm, {kX}, {kH}, {x.norm1}, fb::Params_NormParams, norm());
    launch(fb::Kernel_Linear, {kH}, {kQ}, {x.wq, x.bq});
    launch(fb::Kernel_Linear, {kH}, {kK}, {x.wk});
    launch(fb::Kernel_Linear, {kH}, {kV}, {x.wv});
    launch(fb::Kernel_Rope, {kQ, kPos}, {kQ}, {}, fb::Params_RopeParams, rope());
    launch(fb::Kernel_Rope, {kK, kPos}, {kK}, {}, fb::Params_RopeParams, rope());
    launch(fb::Kernel_Attention, {kQ, kK, kV, kPos}, {kAttn}, {}, fb::Params_AttentionParams,
           fb::CreateAttentionParams(b, l, scale, 0).Union());
    launch(fb::Kernel_Linear, {kAttn}, {kO}, {x.wo});
    if (tp > 1) launch(fb::Kernel_AllReduce, {kO}, {kO}, {});  // in place
    launch(fb::Kernel_Add, {kX, kO}, {kX}, {});
    launch(fb::Kernel_RmsNorm, {kX}, {kH}, {x.norm2}, fb::Params_NormParams, norm());
    launch(fb::Kernel_Linear, {kH}, {kGate}, {x.gate});
    launch(fb::Kernel_Linear, {kH}, {kUp}, {x.up});
    launch(fb::Kernel_SwiGLU, {kGate, kUp}, {kAct}, {});
    launch(fb::Kernel_Linear, {kAct}, {kDown}, {x.down});
    if (tp > 1) launch(fb::Kernel_AllReduce, {kDown}, {kDown}, {});
    launch(fb::Kernel_Add, {kX, kDown}, {kX}, {});
  }
  launch(fb::Kernel_RmsNorm, {kX}, {kH}, {final_norm}, fb::Params_NormParams, norm());
  if (tp == 1) {
    launch(fb::Kernel_Logits, {kH, kRows}, {kLogits}, {lm_head});
  } else {
    launch(fb::Kernel_Logits, {kH, kRows}, {kLogitsLocal}, {lm_head});
    launch(fb::Kernel_AllGather, {kLogitsLocal}, {kLogits}, {});
  }
  auto kv = fb::CreateKVCacheSpec(b, fb::KVKind_GQA, d.layers, d.block_size, hkv, d.head_dim,
                                  d.head_dim, 0, 0, fb::DType_F32);
  auto plan = fb::CreatePlanDirect(b, &buffers, &launches, kIds, kPos, kRows, kLogits, kv, 0, 0,
                                   tp_size);
  const std::vector<int32_t> eos = {2};
  auto model = fb::CreateModelInfoDirect(b, "llama", d.vocab, d.hidden, d.layers, d.heads,
                                         d.kv_heads, d.head_dim, 4096, 1, &eos, 0);
  auto target = fb::CreateTarget(b, b.CreateString("host"));
  auto root = fb::CreateArtifactDirect(b, artifact::kSchemaVersion, "tp test", "/none", model,
                                       target, &table, &segs, plan);
  fb::FinishArtifactBuffer(b, root);
  return (*writer)->finish(b.GetBufferPointer(), b.GetSize());
}

}  // namespace ds::testing

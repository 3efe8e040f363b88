// Tensor-parallel weight shards: slicing, FP8 block-scale regridding, per-part segments.
#include "compiler/artifact/WeightShards.h"

#include <cstring>
#include <map>
#include <numeric>

#include "artifact/artifact_writer.h"

namespace mlir::ds {

namespace fb = ::ds::fb;

namespace {

size_t storedSize(fb::DType t) {
  switch (t) {
    case fb::DType_F32: case fb::DType_I32: return 4;
    case fb::DType_F16: case fb::DType_BF16: return 2;
    default: return 1;
  }
}

int64_t product(const std::vector<int64_t>& v, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < to; ++i) p *= v[i];
  return p;
}

}  // namespace

std::vector<uint8_t> slicePart(const uint8_t* full, const std::vector<int64_t>& shape,
                               size_t esize, int64_t dim, int64_t pieces, int64_t part) {
  // [outer, dimSize, inner] -> [outer, dimSize / pieces, inner] at offset part * local.
  int64_t outer = product(shape, 0, dim), inner = product(shape, dim + 1, shape.size());
  int64_t dimSize = shape[dim], local = dimSize / pieces;
  size_t run = static_cast<size_t>(local * inner) * esize;
  std::vector<uint8_t> out(static_cast<size_t>(outer) * run);
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(out.data() + o * run,
                full + (static_cast<size_t>(o * dimSize + part * local) * inner) * esize, run);
  return out;
}

std::vector<float> partBlockScales(const ShardedWeight& w, int64_t part,
                                   std::vector<int64_t>* block, std::vector<int64_t>* shape) {
  size_t rank = w.fullShape.size();
  int64_t rows = w.fullShape[rank - 2], cols = w.fullShape[rank - 1];
  int64_t experts = rank == 3 ? w.fullShape[0] : 1;
  int64_t br = w.block[0], bc = w.block[1];
  int64_t fullBr = (rows + br - 1) / br, fullBc = (cols + bc - 1) / bc;
  // The cut dimension as matrix rows (0) or columns (1).
  int64_t axis = w.dim == static_cast<int64_t>(rank) - 2 ? 0 : 1;
  int64_t local = (axis == 0 ? rows : cols) / w.pieces, offset = part * local;
  int64_t fine = std::gcd(axis == 0 ? br : bc, offset == 0 ? (axis == 0 ? br : bc) : offset);
  int64_t nr = axis == 0 ? (local + fine - 1) / fine : fullBr;
  int64_t nc = axis == 1 ? (local + fine - 1) / fine : fullBc;
  std::vector<float> out(static_cast<size_t>(experts * nr * nc));
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t i = 0; i < nr; ++i)
      for (int64_t j = 0; j < nc; ++j) {
        int64_t si = axis == 0 ? (offset + i * fine) / br : i;
        int64_t sj = axis == 1 ? (offset + j * fine) / bc : j;
        out[(e * nr + i) * nc + j] = w.blockScale[(e * fullBr + si) * fullBc + sj];
      }
  *block = {axis == 0 ? fine : br, axis == 1 ? fine : bc};
  *shape = rank == 3 ? std::vector<int64_t>{experts, nr, nc} : std::vector<int64_t>{nr, nc};
  return out;
}

llvm::Expected<TensorRecord> writeShards(const ShardedWeight& w,
                                         ::ds::artifact::ArtifactWriter& writer,
                                         int primaryIndex,
                                         const std::function<int(TensorRecord)>& addTensor) {
  if (w.pieces < 1 || w.tp % w.pieces != 0 || w.dim < 0 ||
      w.dim >= static_cast<int64_t>(w.fullShape.size()) || w.fullShape[w.dim] % w.pieces != 0)
    return llvm::createStringError("weight @%s: invalid tensor-parallel cut (dim %lld, %lld pieces)",
                                   w.symbol.c_str(), static_cast<long long>(w.dim),
                                   static_cast<long long>(w.pieces));
  std::vector<int64_t> localShape = w.fullShape;
  localShape[w.dim] /= w.pieces;
  size_t rank = localShape.size();
  int64_t rows = rank == 1 ? 1 : localShape[rank - 2], cols = localShape.back();
  int64_t experts = w.experts > 0 ? w.experts : 1;

  // One record per distinct part; ranks holding the same part point at the same segments.
  std::map<int64_t, TensorRecord> parts;
  for (int64_t part = 0; part < w.pieces; ++part) {
    std::vector<uint8_t> bytes = slicePart(w.full, w.fullShape, storedSize(w.stored), w.dim,
                                           w.pieces, part);
    TensorRecord r;
    r.name = w.symbol;
    r.source = w.source;
    r.shape = localShape;
    r.experts = w.experts;
    if (!w.quant) {
      auto seg = writer.addSegmentFromMemory(bytes.data(), bytes.size());
      if (!seg.isOk()) return llvm::createStringError(seg.status().message());
      r.dtype = w.stored;
      r.segment = *seg;
      r.nbytes = bytes.size();
    } else {
      // Each part is quantized on its own: row cuts give the codes and scales of the whole
      // tensor; column cuts get per-part channel scales (finer, never coarser).
      QuantizedWeight q;
      if (!quantizeWeight(*w.quant, reinterpret_cast<const float*>(bytes.data()), experts, rows,
                          cols, &q))
        return llvm::createStringError("quantizing @%s (part %lld) failed", w.symbol.c_str(),
                                       static_cast<long long>(part));
      auto seg = writer.addSegmentFromMemory(q.codes.data(), q.codes.size());
      if (!seg.isOk()) return llvm::createStringError(seg.status().message());
      r.dtype = w.quant->dtype;
      r.segment = *seg;
      r.nbytes = q.codes.size();
      r.quant = w.quant->kind;
      r.group_size = w.quant->group_size;
      int64_t groups = static_cast<int64_t>(q.scales.size()) / (experts * rows);
      auto extra = [&](const std::string& suffix, const std::vector<float>& v) -> llvm::Expected<int> {
        auto s = writer.addSegmentFromMemory(v.data(), v.size() * sizeof(float));
        if (!s.isOk()) return llvm::createStringError(s.status().message());
        TensorRecord x;
        x.name = x.source = w.symbol + suffix + ".part" + std::to_string(part);
        x.shape = {experts * rows, groups};
        x.segment = *s;
        x.nbytes = v.size() * sizeof(float);
        return addTensor(std::move(x));
      };
      auto sc = extra(".qscale", q.scales);
      if (!sc) return sc.takeError();
      r.qscale = *sc;
      if (!q.zeros.empty()) {
        auto z = extra(".qzero", q.zeros);
        if (!z) return z.takeError();
        r.qzero = *z;
      }
    }
    if (w.blockScale) {
      std::vector<int64_t> shape;
      std::vector<float> scales = partBlockScales(w, part, &r.block, &shape);
      auto s = writer.addSegmentFromMemory(scales.data(), scales.size() * sizeof(float));
      if (!s.isOk()) return llvm::createStringError(s.status().message());
      TensorRecord x;
      x.name = x.source = w.symbol + ".block_scale.part" + std::to_string(part);
      x.shape = shape;
      x.segment = *s;
      x.nbytes = scales.size() * sizeof(float);
      r.scale = addTensor(std::move(x));
    }
    parts[part] = std::move(r);
  }

  TensorRecord primary = parts[partOfRank(w, 0)];
  primary.shards.push_back(static_cast<uint32_t>(primaryIndex));
  for (int64_t rank = 1; rank < w.tp; ++rank) {
    TensorRecord r = parts[partOfRank(w, rank)];
    r.tp_rank = static_cast<int>(rank);
    primary.shards.push_back(static_cast<uint32_t>(addTensor(std::move(r))));
  }
  return primary;
}

}  // namespace mlir::ds

// Tensor-parallel weight shards: slicing, FP8 block-scale regridding, per-part segments.
#include "compiler/artifact/WeightShards.h"

#include <cstring>
#include <map>
#include <numeric>

#include "artifact/artifact_info.h"
#include "artifact/artifact_writer.h"

namespace mlir::ds {

namespace fb = ::ds::fb;

namespace {

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
  if (rank == 3 && w.dim == 0) {  // whole experts: their scale grids unchanged
    int64_t local = experts / w.pieces;
    const float* first = w.blockScale + part * local * fullBr * fullBc;
    *block = {br, bc};
    *shape = {local, fullBr, fullBc};
    return std::vector<float>(first, first + local * fullBr * fullBc);
  }
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

namespace {
// Code bits of a grouped encoding: a row is a little-endian bit stream, column c at bit c * bits.
int codeBits(const QuantEncoding& e) { return e.kind == fb::QuantKind_Int6Group ? 6 : 4; }
}  // namespace

QuantizedPart sliceQuantizedExperts(const QuantizedWeight& whole, const QuantEncoding& e,
                                    int64_t experts, int64_t rows, int64_t cols, int64_t pieces,
                                    int64_t part) {
  bool int4 = isGroupQuant(e);  // int4 or int6 groups
  int64_t groups = int4 ? (cols + e.group_size - 1) / e.group_size : 1;
  int64_t rowBytes = codeRowBytes(e, cols);
  int64_t local = experts / pieces, firstRow = part * local * rows, n = local * rows;
  QuantizedPart out;
  auto range = [](const auto& v, int64_t from, int64_t count) {
    return std::vector<typename std::decay_t<decltype(v)>::value_type>(v.begin() + from,
                                                                        v.begin() + from + count);
  };
  out.q.codes = range(whole.codes, firstRow * rowBytes, n * rowBytes);
  out.q.scales = range(whole.scales, firstRow * groups, n * groups);
  if (!whole.zeros.empty()) out.q.zeros = range(whole.zeros, firstRow * groups, n * groups);
  out.group_size = int4 ? e.group_size : 0;
  return out;
}

QuantizedPart sliceQuantized(const QuantizedWeight& whole, const QuantEncoding& e, int64_t experts,
                             int64_t rows, int64_t cols, bool cutColumns, int64_t pieces,
                             int64_t part) {
  bool int4 = isGroupQuant(e);  // int4 or int6 groups
  int64_t G = int4 ? e.group_size : cols;  // per-channel: one "group" per row
  int64_t groups = (cols + G - 1) / G;
  int64_t rowBytes = codeRowBytes(e, cols);
  QuantizedPart out;
  if (!cutColumns) {
    int64_t local = rows / pieces, first = part * local;
    for (int64_t x = 0; x < experts; ++x) {
      const uint8_t* c = whole.codes.data() + (x * rows + first) * rowBytes;
      out.q.codes.insert(out.q.codes.end(), c, c + local * rowBytes);
      const float* sc = whole.scales.data() + (x * rows + first) * groups;
      out.q.scales.insert(out.q.scales.end(), sc, sc + local * groups);
      if (!whole.zeros.empty()) {
        const float* z = whole.zeros.data() + (x * rows + first) * groups;
        out.q.zeros.insert(out.q.zeros.end(), z, z + local * groups);
      }
    }
    out.group_size = int4 ? G : 0;
    return out;
  }
  int64_t local = cols / pieces, off = part * local;
  if (!int4) {
    for (int64_t r = 0; r < experts * rows; ++r) {
      const uint8_t* c = whole.codes.data() + r * rowBytes + off;
      out.q.codes.insert(out.q.codes.end(), c, c + local);
    }
    out.q.scales = whole.scales;  // one scale per output channel, whatever the columns
    return out;
  }
  int64_t fine = std::gcd(G, off == 0 ? G : off);
  int64_t fineGroups = (local + fine - 1) / fine, localBytes = codeRowBytes(e, local);
  const int bits = codeBits(e);
  out.q.codes.assign(static_cast<size_t>(experts * rows * localBytes), 0);
  for (int64_t r = 0; r < experts * rows; ++r) {
    const uint8_t* src = whole.codes.data() + r * rowBytes;
    uint8_t* dst = out.q.codes.data() + r * localBytes;
    for (int64_t c = 0; c < local; ++c)
      for (int k = 0; k < bits; ++k) {  // bit k of column off + c moves to bit k of column c
        const int64_t from = (off + c) * bits + k, to = c * bits + k;
        dst[to / 8] |= static_cast<uint8_t>(((src[from / 8] >> (from % 8)) & 1) << (to % 8));
      }
    for (int64_t g = 0; g < fineGroups; ++g) {
      int64_t og = (off + g * fine) / G;
      out.q.scales.push_back(whole.scales[r * groups + og]);
      if (!whole.zeros.empty()) out.q.zeros.push_back(whole.zeros[r * groups + og]);
    }
  }
  out.group_size = fine;
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
  int64_t rows = rank == 1 ? 1 : localShape[rank - 2];
  int64_t experts = w.experts > 0 ? w.experts : 1;
  // Expert parallelism cuts stacked experts along dimension 0: each part holds whole experts.
  const bool expertCut = w.experts > 0 && w.dim == 0;
  const int64_t localExperts = expertCut ? experts / w.pieces : experts;

  // Quantized weights are quantized whole, once, then sliced: every rank decodes exactly the
  // values of the unsharded build.
  QuantizedWeight wholeQ;
  bool cutColumns = w.dim == static_cast<int64_t>(rank) - 1;
  int64_t fullRows = rank == 1 ? 1 : w.fullShape[rank - 2], fullCols = w.fullShape.back();
  if (w.quant && !quantizeWeight(*w.quant, reinterpret_cast<const float*>(w.full), experts,
                                 fullRows, fullCols, &wholeQ, w.hessian))
    return llvm::createStringError("quantizing @%s failed", w.symbol.c_str());

  // One record per distinct part; ranks holding the same part point at the same segments.
  std::map<int64_t, TensorRecord> parts;
  for (int64_t part = 0; part < w.pieces; ++part) {
    TensorRecord r;
    r.name = w.symbol;
    r.source = w.source;
    r.shape = localShape;
    r.experts = w.experts > 0 ? localExperts : 0;
    if (!w.quant) {
      std::vector<uint8_t> bytes = slicePart(w.full, w.fullShape, ::ds::artifact::dtypeSize(w.stored), w.dim,
                                             w.pieces, part);
      auto seg = writer.addSegmentFromMemory(bytes.data(), bytes.size());
      if (!seg.isOk()) return llvm::createStringError(seg.status().message());
      r.dtype = w.stored;
      r.segment = *seg;
      r.nbytes = bytes.size();
    } else {
      QuantizedPart qp =
          expertCut ? sliceQuantizedExperts(wholeQ, *w.quant, experts, fullRows, fullCols, w.pieces, part)
                    : sliceQuantized(wholeQ, *w.quant, experts, fullRows, fullCols, cutColumns,
                                     w.pieces, part);
      const QuantizedWeight& q = qp.q;
      auto seg = writer.addSegmentFromMemory(q.codes.data(), q.codes.size());
      if (!seg.isOk()) return llvm::createStringError(seg.status().message());
      r.dtype = w.quant->dtype;
      r.segment = *seg;
      r.nbytes = q.codes.size();
      r.quant = w.quant->kind;
      r.group_size = qp.group_size;
      int64_t groups = static_cast<int64_t>(q.scales.size()) / (localExperts * rows);
      auto extra = [&](const std::string& suffix, const std::vector<float>& v) -> llvm::Expected<int> {
        auto s = writer.addSegmentFromMemory(v.data(), v.size() * sizeof(float));
        if (!s.isOk()) return llvm::createStringError(s.status().message());
        TensorRecord x;
        x.name = x.source = w.symbol + suffix + ".part" + std::to_string(part);
        x.shape = {localExperts * rows, groups};
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

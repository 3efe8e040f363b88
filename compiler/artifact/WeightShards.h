// Tensor-parallel weight shards: cutting a checkpoint tensor into the ranks' parts while it is
// written (codes, quantization and FP8 block scales per part), and the tensor-table records.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "artifact_generated.h"
#include "compiler/artifact/WeightQuantizer.h"
#include "llvm/Support/Error.h"

namespace ds::artifact {
class ArtifactWriter;
}

namespace mlir::ds {

// Everything one fb::Tensor entry holds.
struct TensorRecord {
  std::string name, source;
  ::ds::fb::DType dtype = ::ds::fb::DType_F32;
  std::vector<int64_t> shape;
  uint32_t segment = 0;
  uint64_t nbytes = 0;
  int scale = -1;
  std::vector<int64_t> block;
  int64_t experts = 0;
  int tp_rank = 0;
  ::ds::fb::QuantKind quant = ::ds::fb::QuantKind_None;
  int64_t group_size = 0;
  int qscale = -1, qzero = -1;
  std::vector<uint32_t> shards;
  // Synthetic weights (--weights random): no segment; the runtime fills mean + std * normal
  // from stream `stream` of the artifact's seed.
  bool synthetic = false;
  float synthetic_mean = 0, synthetic_std = 0;
  uint64_t synthetic_stream = 0;
};

struct ShardedWeight {
  std::string symbol, source;
  std::vector<int64_t> fullShape;  // checkpoint shape ([experts, rows, cols] when stacked)
  int64_t experts = 0;             // the checkpoint's stacked experts (fullShape[0]), or 0
  int64_t dim = 0, pieces = 1, tp = 1;  // the cut; rank r holds part r / (tp / pieces)
  ::ds::fb::DType stored = ::ds::fb::DType_F32;  // element type of `full` (F32 when quantized)
  std::optional<QuantEncoding> quant;
  const uint8_t* full = nullptr;     // the whole tensor, row-major
  const float* blockScale = nullptr; // FP8 block scales of the whole tensor, or null
  std::vector<int64_t> block;        // their block shape
  const double* hessian = nullptr;   // calibration for the whole tensor's quantization, or null
};

// Rank r's part index.
inline int64_t partOfRank(const ShardedWeight& w, int64_t rank) {
  return rank / (w.tp / w.pieces);
}

// Copies part `part` of a row-major tensor cut along `dim` into `pieces` (elements of `esize`
// bytes).
std::vector<uint8_t> slicePart(const uint8_t* full, const std::vector<int64_t>& shape,
                               size_t esize, int64_t dim, int64_t pieces, int64_t part);

// FP8 block scales of one part. A cut inside a block keeps the codes' scales exact by using a
// finer block grid along the cut dimension: gcd(block, part offset), each fine block lying in
// one original block. Returns the scales ([experts?, rows', cols']) and sets `block`.
std::vector<float> partBlockScales(const ShardedWeight& w, int64_t part,
                                   std::vector<int64_t>* block, std::vector<int64_t>* shape);

// Part `part` of a weight quantized whole (so every rank decodes exactly the values of the
// unsharded build). Row cuts slice codes and scales; column cuts slice the codes (int4: nibbles
// repacked) and keep each element's scale: per-channel scales are copied, int4 groups are
// regridded like FP8 blocks (group size gcd(group, part offset) inside the part).
struct QuantizedPart {
  QuantizedWeight q;
  int64_t group_size = 0;
};
QuantizedPart sliceQuantized(const QuantizedWeight& whole, const QuantEncoding& e, int64_t experts,
                             int64_t rows, int64_t cols, bool cutColumns, int64_t pieces,
                             int64_t part);
// Part `part` of stacked experts cut along dimension 0 (expert parallelism): the codes, scales and
// zero points of experts [part * experts / pieces, (part + 1) * experts / pieces), unchanged.
QuantizedPart sliceQuantizedExperts(const QuantizedWeight& whole, const QuantEncoding& e,
                                    int64_t experts, int64_t rows, int64_t cols, int64_t pieces,
                                    int64_t part);

// Writes every distinct part's segments (ranks holding the same part share them) and appends
// records for ranks 1..tp-1 and for scales through `addTensor` (which returns the new tensor's
// index). Returns rank 0's record, to be stored at `primaryIndex`, with `shards` filled.
llvm::Expected<TensorRecord> writeShards(const ShardedWeight& w,
                                         ::ds::artifact::ArtifactWriter& writer,
                                         int primaryIndex,
                                         const std::function<int(TensorRecord)>& addTensor);

}  // namespace mlir::ds

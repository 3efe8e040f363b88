// The output layer's scheme for ds-compile --quant-lm-head auto (LLVM-free: unit-tested alone).
#pragma once

#include <cstdint>
#include <string>

namespace mlir::ds {

// `scheme`: the --quant scheme ("" for none, "int8", "int4_g128", ...). Host-only builds: "w8"
// under int8, "w6g128" under int4 when the host's int8-activation kernel can read the 6-bit
// head (rows per rank a multiple of 16, columns of 64; other shapes would take the slow f32
// decode of I6 rows), else "w8"; every other case "none" (docs/quantization.md).
std::string autoLmHeadQuant(const std::string& scheme, bool hostOnly, int64_t headRows,
                            int64_t headCols, int64_t tp);

}  // namespace mlir::ds

// ds-compile's --quant-lm-head auto: the output layer's scheme from the build and the head's shape.
#include "compiler/quant/HeadDefaults.h"

namespace mlir::ds {

std::string autoLmHeadQuant(const std::string& scheme, bool hostOnly, int64_t headRows,
                            int64_t headCols, int64_t tp) {
  const bool int8 = scheme.rfind("int8", 0) == 0, int4 = scheme.rfind("int4", 0) == 0;
  if (!hostOnly || (!int8 && !int4)) return "none";
  if (int8) return "w8";
  // The head is cut vocab-parallel: each rank holds headRows / tp rows.
  const bool readable = tp >= 1 && headRows > 0 && headRows % tp == 0 && (headRows / tp) % 16 == 0 &&
                        headCols > 0 && headCols % 64 == 0;
  return readable ? "w6g128" : "w8";
}

}  // namespace mlir::ds

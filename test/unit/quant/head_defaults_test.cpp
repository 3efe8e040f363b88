// ds-compile's --quant-lm-head auto: the 6-bit head only where the host kernel reads it.
#include <gtest/gtest.h>

#include "compiler/quant/HeadDefaults.h"

namespace mlir::ds {
namespace {

TEST(AutoLmHeadQuant, SixBitUnderInt4WhereTheKernelReadsIt) {
  // R1-Distill-Qwen-1.5B's head [151936, 1536], one rank and two.
  EXPECT_EQ(autoLmHeadQuant("int4_g128", true, 151936, 1536, 1), "w6g128");
  EXPECT_EQ(autoLmHeadQuant("int4_g64_asym", true, 151936, 1536, 2), "w6g128");
  // Rows per rank not a multiple of 16 (32001 rows; 512 over 3 ranks) or columns not of 64:
  // int8, which the fused decode tiles read at any shape.
  EXPECT_EQ(autoLmHeadQuant("int4_g128", true, 32001, 4096, 1), "w8");
  EXPECT_EQ(autoLmHeadQuant("int4_g128", true, 512, 64, 3), "w8");
  EXPECT_EQ(autoLmHeadQuant("int4_g128", true, 512, 96, 1), "w8");
  EXPECT_EQ(autoLmHeadQuant("int4_g128", true, 32016, 4096, 2), "w8");  // 16008 rows per rank
  // w8 keeps int8; no --quant, fp8 and GPU targets keep the checkpoint's head.
  EXPECT_EQ(autoLmHeadQuant("int8", true, 151936, 1536, 1), "w8");
  EXPECT_EQ(autoLmHeadQuant("", true, 151936, 1536, 1), "none");
  EXPECT_EQ(autoLmHeadQuant("fp8", true, 151936, 1536, 1), "none");
  EXPECT_EQ(autoLmHeadQuant("int4_g128", false, 151936, 1536, 1), "none");
  EXPECT_EQ(autoLmHeadQuant("int8", false, 151936, 1536, 1), "none");
}

}  // namespace
}  // namespace mlir::ds

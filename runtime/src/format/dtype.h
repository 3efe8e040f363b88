// Tensor element types of safetensors checkpoints and bit-exact conversions of low-precision floats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace ds {

// The safetensors dtype names, one enumerator each (F8_E4M3 is the "fn" variant: no infinities).
enum class DType : uint8_t {
  kF64,
  kF32,
  kF16,
  kBF16,
  kF8_E4M3,
  kF8_E5M2,
  kI64,
  kI32,
  kI16,
  kI8,
  kU64,
  kU32,
  kU16,
  kU8,
  kBool,
};

// Bytes per element (BOOL is one byte, as in safetensors).
size_t dtypeSize(DType dtype);
// The safetensors spelling, e.g. "BF16".
const char* dtypeName(DType dtype);
// Parses the safetensors spelling (case-sensitive, as the format is); false if unknown.
bool parseDType(std::string_view name, DType* out);
bool isFloatingPoint(DType dtype);

// Bit-exact widening of one element. Subnormals, infinities and NaN are preserved
// (NaN payload is not: every NaN becomes a quiet NaN of the same sign).
float halfToFloat(uint16_t bits);
float bf16ToFloat(uint16_t bits);
// e4m3fn: bias 7, no infinities, S.1111.111 is NaN, max finite 448.
float fp8E4M3ToFloat(uint8_t bits);
// e5m2: the upper byte of an IEEE half.
float fp8E5M2ToFloat(uint8_t bits);

// Narrowing with round-to-nearest-even (used to build fixtures and by weight conversion).
uint16_t floatToHalf(float value);
uint16_t floatToBF16(float value);
// Saturates finite overflow to +-448 (as torch's float8_e4m3fn cast of a clamped value does);
// infinities and NaN become NaN because e4m3fn has no infinity.
uint8_t floatToFp8E4M3(float value);

// Widens `count` elements stored little-endian at `src` (need not be aligned) to float.
// Supports F32, F16, BF16, F8_E4M3, F8_E5M2; other dtypes give UNSUPPORTED.
Status convertToFloat(DType dtype, const void* src, float* dst, size_t count);

}  // namespace ds

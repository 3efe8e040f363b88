// DType names/sizes and the float conversions, done on bit patterns so results are exact on every host.
#include "format/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace ds {
namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
  bool floating;
};

constexpr DTypeEntry kDTypes[] = {
    {DType::kF64, "F64", 8, true},        {DType::kF32, "F32", 4, true},
    {DType::kF16, "F16", 2, true},        {DType::kBF16, "BF16", 2, true},
    {DType::kF8_E4M3, "F8_E4M3", 1, true}, {DType::kF8_E5M2, "F8_E5M2", 1, true},
    {DType::kI64, "I64", 8, false},       {DType::kI32, "I32", 4, false},
    {DType::kI16, "I16", 2, false},       {DType::kI8, "I8", 1, false},
    {DType::kU64, "U64", 8, false},       {DType::kU32, "U32", 4, false},
    {DType::kU16, "U16", 2, false},       {DType::kU8, "U8", 1, false},
    {DType::kBool, "BOOL", 1, false},
};

const DTypeEntry& entry(DType dtype) { return kDTypes[static_cast<size_t>(dtype)]; }

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
}

// Builds the 256-entry e4m3fn table once; every entry is an exact power-of-two multiple.
struct Fp8E4M3Table {
  float values[256];
  Fp8E4M3Table() {
    for (int i = 0; i < 256; ++i) {
      const int sign = i >> 7, exp = (i >> 3) & 0xF, mant = i & 0x7;
      float v;
      if (exp == 0xF && mant == 0x7) {
        v = std::numeric_limits<float>::quiet_NaN();
      } else if (exp == 0) {
        v = std::ldexp(static_cast<float>(mant), -9);  // mant/8 * 2^-6
      } else {
        v = std::ldexp(static_cast<float>(8 + mant), exp - 10);  // (1+mant/8) * 2^(exp-7)
      }
      values[i] = sign ? -v : v;
    }
  }
};

const Fp8E4M3Table& fp8Table() {
  static const Fp8E4M3Table table;
  return table;
}

template <typename T>
T loadLE(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // hosts we target are little-endian, as is the format
  return v;
}

}  // namespace

size_t dtypeSize(DType dtype) { return entry(dtype).size; }
const char* dtypeName(DType dtype) { return entry(dtype).name; }
bool isFloatingPoint(DType dtype) { return entry(dtype).floating; }

bool parseDType(std::string_view name, DType* out) {
  for (const DTypeEntry& e : kDTypes) {
    if (name == e.name) {
      *out = e.dtype;
      return true;
    }
  }
  return false;
}

float halfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) return bitsToFloat(sign | 0x7F800000u | (mant ? 0x400000u | (mant << 13) : 0));
  if (exp != 0) return bitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bitsToFloat(sign);
  // Subnormal half: normalise into a float (every half subnormal is a normal float).
  int e = -1;
  do {
    mant <<= 1;
    ++e;
  } while ((mant & 0x400) == 0);
  return bitsToFloat(sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3FF) << 13));
}

float bf16ToFloat(uint16_t bits) { return bitsToFloat(static_cast<uint32_t>(bits) << 16); }
float fp8E4M3ToFloat(uint8_t bits) { return fp8Table().values[bits]; }
float fp8E5M2ToFloat(uint8_t bits) { return halfToFloat(static_cast<uint16_t>(bits) << 8); }

uint16_t floatToBF16(float value) {
  uint32_t bits = floatToBits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // quiet NaN
  bits += 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>(bits >> 16);
}

uint16_t floatToHalf(float value) {
  const uint32_t bits = floatToBits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return sign | 0x7E00;
  if (abs >= 0x477FF000u) return sign | 0x7C00;  // rounds to >= 65520: infinity
  if (abs >= 0x38800000u) {                        // normal half range (>= 2^-14)
    uint32_t r = abs - (112u << 23);
    r += 0xFFF + ((r >> 13) & 1);
    return sign | static_cast<uint16_t>(r >> 13);
  }
  if (abs < 0x33000000u) return sign;  // below half of the smallest subnormal (2^-25): zero
  // Subnormal: shift the full significand, rounding to nearest even on the dropped bits.
  const uint32_t exp = abs >> 23;
  const uint32_t mant = (abs & 0x7FFFFF) | 0x800000;
  const uint32_t shift = 126 - exp;  // 113 + 13 - exp
  uint32_t result = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (result & 1))) ++result;
  return sign | static_cast<uint16_t>(result);
}

uint8_t floatToFp8E4M3(float value) {
  if (std::isnan(value) || std::isinf(value)) return std::signbit(value) ? 0xFF : 0x7F;
  const uint8_t sign = std::signbit(value) ? 0x80 : 0x00;
  const float a = std::fabs(value);
  if (a >= 448.0f) return sign | 0x7E;
  // Pick the representable neighbours by scanning the (monotonic) positive half of the table;
  // 127 entries, so a binary search keeps this cheap enough for weight conversion.
  const float* table = fp8Table().values;
  int lo = 0, hi = 0x7E;
  while (lo < hi) {  // first code whose value >= a
    const int mid = (lo + hi) / 2;
    if (table[mid] < a) lo = mid + 1; else hi = mid;
  }
  if (table[lo] == a || lo == 0) return sign | static_cast<uint8_t>(lo);
  const float up = table[lo], down = table[lo - 1];
  const float du = up - a, dd = a - down;
  int code = lo;
  if (dd < du || (dd == du && ((lo - 1) & 1) == 0)) code = lo - 1;
  return sign | static_cast<uint8_t>(code);
}

Status convertToFloat(DType dtype, const void* src, float* dst, size_t count) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case DType::kF32:
      std::memcpy(dst, p, count * sizeof(float));
      return Status::ok();
    case DType::kF16:
      for (size_t i = 0; i < count; ++i) dst[i] = halfToFloat(loadLE<uint16_t>(p + 2 * i));
      return Status::ok();
    case DType::kBF16:
      for (size_t i = 0; i < count; ++i) dst[i] = bf16ToFloat(loadLE<uint16_t>(p + 2 * i));
      return Status::ok();
    case DType::kF8_E4M3: {
      const float* table = fp8Table().values;
      for (size_t i = 0; i < count; ++i) dst[i] = table[p[i]];
      return Status::ok();
    }
    case DType::kF8_E5M2:
      for (size_t i = 0; i < count; ++i) dst[i] = fp8E5M2ToFloat(p[i]);
      return Status::ok();
    default:
      return unsupported(std::string("convertToFloat: dtype ") + dtypeName(dtype) +
                         " is not a float type convertible to F32");
  }
}

}  // namespace ds

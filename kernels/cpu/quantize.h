// Weight quantizers the compiler calls while streaming weights (int8 / int4 groups / FP8 per channel), and their byte sizes.
#pragma once

#include <cstdint>

#include "cpu/cpu_kernels.h"

namespace ds::cpu {

// All quantizers are pure and deterministic: f32 arithmetic, round half to even (torch.round),
// rows independent of each other. They return false (writing nothing) for negative sizes, null
// outputs, or (int4) a group_size < 1 / a null `zeros` with asymmetric = true. Non-finite weights
// are the caller's error (the compiler checks them). Encodings: cpu_kernels.h (WeightView) and
// docs/quantization.md.

// I8 per output channel: scales[r] = max|w[r, :]| / 127, q = clamp(round(w / scale), -127, 127).
// An all-zero row gets scale 1 and q = 0.
bool quantizeInt8PerChannel(const float* w, int64_t rows, int64_t cols, int8_t* q, float* scales);

// I4 groups of group_size columns along each row (last group partial), packed two per byte, low
// nibble = even column, each row padded to a whole byte (pad nibble 0).
//  symmetric:  scale = max|group| / 7, q = clamp(round(w / scale), -8, 7), stored two's complement.
//  asymmetric: lo = min(min(group), 0), hi = max(max(group), 0) (the range always holds 0, as
//              GPTQ does, so the integer zero point is never clamped away from it),
//              scale = (hi - lo) / 15, zero = clamp(round(-lo / scale), 0, 15) stored as a float,
//              q = clamp(round(w / scale) + zero, 0, 15).
// An all-zero group gets scale 1 (and zero 0). scales / zeros hold [rows, ceil(cols / group_size)];
// zeros may be null when asymmetric is false.
bool quantizeInt4Groups(const float* w, int64_t rows, int64_t cols, int64_t group_size,
                        bool asymmetric, uint8_t* packed, float* scales, float* zeros);

// F8E4M3 per output channel: scales[r] = max|w[r, :]| / 448, q = fp8(w / scale) (saturating,
// round half to even). An all-zero row gets scale 1.
bool quantizeFp8PerChannel(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales);

// f32 -> float8_e4m3fn, round half to even, saturating to +-448 (NaN -> 0x7f).
uint8_t f32ToFp8E4M3(float x);

// Byte sizes of the encodings.
int64_t int8Bytes(int64_t rows, int64_t cols);           // rows * cols
int64_t int4Bytes(int64_t rows, int64_t cols);           // rows * ceil(cols / 2)
int64_t fp8Bytes(int64_t rows, int64_t cols);            // rows * cols
int64_t int4Groups(int64_t cols, int64_t group_size);    // ceil(cols / group_size)
// f32 values in scales (and in zeros, when asymmetric): rows * ceil(cols / group_size).
int64_t int4ScaleCount(int64_t rows, int64_t cols, int64_t group_size);

}  // namespace ds::cpu

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

// Scale-searching variants (what the compiler uses): same encodings, same code rule for a given
// scale (round half to even, clamp; FP8 saturating RNE), but each row (FP8) / group (int4) takes
// the candidate scale (and zero point) with the least sum of squared reconstruction errors,
// computed on the decoded f32 values. Candidate 0 is the round-to-nearest choice above, so the
// error never exceeds RTN's; ties keep the earlier candidate (deterministic). Candidates:
//  int4 symmetric:  s = max|group| * f / d, f = 1 - k / 32 (k = 0..16), d in {7, 8} (d = 8 lets
//                   a negative extreme take code -8).
//  int4 asymmetric: lo = f_lo * min(min(group), 0), hi = f_hi * max(max(group), 0), f_lo and f_hi
//                   in 1 - k / 32 (k = 0..16), scale / zero then as in quantizeInt4Groups.
//  FP8:             s = max|row| / 448 * 2^(k / 64), k = -8..64 (mild clipping to one octave up,
//                   which moves each weight against the non-uniform E4M3 grid).
// Elements inside the clamp range keep the half-step bound of the chosen scale; clipped ones
// (|w| beyond 7 s / 8 s, 448 s, or the asymmetric range) do not. Same argument checks as above.
// Symmetric int4 (and int6 below) candidates are rounded to f16 precision (nearest even) where
// that is a normal f16, candidate 0 included, so the stored scales are f16 values and the CPU
// device keeps half-size panel copies of them (cpu_kernels.h); the bound above is then round to
// nearest at that rounded scale.
bool quantizeInt4GroupsSearch(const float* w, int64_t rows, int64_t cols, int64_t group_size,
                              bool asymmetric, uint8_t* packed, float* scales, float* zeros);
bool quantizeFp8PerChannelSearch(const float* w, int64_t rows, int64_t cols, uint8_t* q,
                                 float* scales);

// I6 groups (symmetric; the 6-bit output layer, llama.cpp's Q6_K class): codes in [-32, 31],
// four per three bytes (cpu_kernels.h), q = clamp(round(w / scale), -32, 31) with the scale of
// the least squared error among max|group| * (1 - k / 64) / d, k = 0..16, d in {31, 32}, each
// rounded to f16 as above; candidate 0 is round to nearest, max|group| / 31 (ties keep the earlier candidate). An
// all-zero group gets scale 1. scales hold [rows, ceil(cols / group_size)].
bool quantizeInt6GroupsSearch(const float* w, int64_t rows, int64_t cols, int64_t group_size,
                              uint8_t* packed, float* scales);
int int6Code(float w, float scale);

// A group scale as the int4 / int6 quantizers store it: rounded to f16 precision (nearest even)
// where that is a normal f16, else unchanged. For quantizers that refit scales (GPTQ).
float groupScaleAsStored(float s);

// One int4 code for a given scale (and zero point when asymmetric), as both int4 quantizers
// compute it: symmetric in [-8, 7], asymmetric in [0, 15]. For error-feedback quantizers.
int int4Code(float w, float scale, float zero, bool asymmetric);

// f32 -> float8_e4m3fn, round half to even, saturating to +-448 (NaN -> 0x7f).
uint8_t f32ToFp8E4M3(float x);
// float8_e4m3fn -> f32 (exact).
float fp8E4M3ToF32(uint8_t q);

// Byte sizes of the encodings.
int64_t int8Bytes(int64_t rows, int64_t cols);           // rows * cols
int64_t int4Bytes(int64_t rows, int64_t cols);           // rows * ceil(cols / 2)
int64_t int6Bytes(int64_t rows, int64_t cols);           // rows * 3 * ceil(cols / 4)
int64_t fp8Bytes(int64_t rows, int64_t cols);            // rows * cols
int64_t int4Groups(int64_t cols, int64_t group_size);    // ceil(cols / group_size)
// f32 values in scales (and in zeros, when asymmetric): rows * ceil(cols / group_size).
int64_t int4ScaleCount(int64_t rows, int64_t cols, int64_t group_size);

}  // namespace ds::cpu

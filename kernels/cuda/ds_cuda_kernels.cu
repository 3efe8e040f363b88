// The whole CUDA kernel library as one translation unit, so one fatbin holds every kernel.
#include "src/gemv.cu"
#include "src/attention_decode.cu"
#include "src/attention_prefill.cu"
#include "src/norm_rope.cu"
#include "src/elementwise.cu"
#include "src/synthetic_fill.cu"
#include "src/moe.cu"

// Quantizes weights (scale search, optional GPTQ) with rows split over hardware threads.
#include "compiler/artifact/WeightQuantizer.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>

#include "compiler/quant/Gptq.h"
#include "cpu/quantize.h"

namespace mlir::ds {

namespace fb = ::ds::fb;

std::optional<QuantEncoding> parseQuantScheme(const std::string& s) {
  if (s == "int8") return QuantEncoding{fb::QuantKind_Int8PerChannel, fb::DType_I8, 0, false};
  if (s == "fp8") return QuantEncoding{fb::QuantKind_Fp8PerChannel, fb::DType_F8_E4M3, 0, false};
  for (int64_t g : {64, 128})
    for (bool asym : {false, true})
      if (s == "int4_g" + std::to_string(g) + (asym ? "_asym" : ""))
        return QuantEncoding{fb::QuantKind_Int4Group, fb::DType_I4, g, asym};
  for (int64_t g : {64, 128})
    if (s == "int6_g" + std::to_string(g)) return QuantEncoding{fb::QuantKind_Int6Group, fb::DType_I6, g, false};
  return std::nullopt;
}

bool isGroupQuant(const QuantEncoding& e) {
  return e.kind == fb::QuantKind_Int4Group || e.kind == fb::QuantKind_Int6Group;
}

int64_t codeRowBytes(const QuantEncoding& e, int64_t cols) {
  if (e.kind == fb::QuantKind_Int4Group) return (cols + 1) / 2;
  if (e.kind == fb::QuantKind_Int6Group) return 3 * ((cols + 3) / 4);
  return cols;
}

int quantThreads() {
  if (const char* env = std::getenv("DS_QUANT_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1) return n;
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

bool quantizeWeight(const QuantEncoding& e, const float* w, int64_t experts, int64_t rows,
                    int64_t cols, QuantizedWeight* out, const double* hessian, int threads) {
  int64_t total = experts * rows;
  int64_t rowBytes = codeRowBytes(e, cols);
  int64_t groups = isGroupQuant(e) ? (cols + e.group_size - 1) / e.group_size : 1;
  out->codes.assign(total * rowBytes, 0);
  out->scales.assign(total * groups, 0.0f);
  if (e.asymmetric) out->zeros.assign(total * groups, 0.0f);
  std::optional<GptqPlan> gptq;
  if (hessian && e.kind == fb::QuantKind_Int4Group) gptq = makeGptqPlan(hessian, cols);
  if (threads < 1) threads = quantThreads();
  int64_t per = (total + threads - 1) / threads;
  std::atomic<bool> ok{true};
  std::vector<std::thread> pool;
  for (int64_t r0 = 0; r0 < total; r0 += per) {
    int64_t n = std::min(per, total - r0);
    pool.emplace_back([&, r0, n] {
      const float* src = w + r0 * cols;
      bool good = true;
      switch (e.kind) {
        case fb::QuantKind_Int8PerChannel:
          good = ::ds::cpu::quantizeInt8PerChannel(
              src, n, cols, reinterpret_cast<int8_t*>(out->codes.data() + r0 * rowBytes),
              out->scales.data() + r0);
          break;
        case fb::QuantKind_Fp8PerChannel:
          good = ::ds::cpu::quantizeFp8PerChannelSearch(
              src, n, cols, out->codes.data() + r0 * rowBytes, out->scales.data() + r0);
          break;
        case fb::QuantKind_Int4Group:
          good = ::ds::cpu::quantizeInt4GroupsSearch(
              src, n, cols, e.group_size, e.asymmetric, out->codes.data() + r0 * rowBytes,
              out->scales.data() + r0 * groups,
              e.asymmetric ? out->zeros.data() + r0 * groups : nullptr);
          // GPTQ starts from the searched scales / zero points, re-picks the codes and may
          // refit the scales.
          for (int64_t r = r0; good && gptq && r < r0 + n; ++r)
            gptqInt4Row(*gptq, w + r * cols, e.group_size, e.asymmetric,
                        out->scales.data() + r * groups,
                        e.asymmetric ? out->zeros.data() + r * groups : nullptr,
                        out->codes.data() + r * rowBytes);
          break;
        case fb::QuantKind_Int6Group:
          good = ::ds::cpu::quantizeInt6GroupsSearch(src, n, cols, e.group_size,
                                                     out->codes.data() + r0 * rowBytes,
                                                     out->scales.data() + r0 * groups);
          break;
        default:
          good = false;
      }
      if (!good) ok = false;
    });
  }
  for (std::thread& t : pool) t.join();
  return ok;
}

}  // namespace mlir::ds

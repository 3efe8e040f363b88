// planSyntheticFill: synthetic tensors -> ds_synthetic_fill launches over the weights allocation.
#include "hal/cuda/cuda_synthetic.h"

#include <algorithm>
#include <string>

#include "artifact/synthetic_element.h"

namespace ds::hal::cuda {

// The kernel's dtype codes are the artifact's DType values.
constexpr bool sameCode(int synth, fb::DType d) { return synth == static_cast<int>(d); }
static_assert(sameCode(DS_CUDA_SYNTH_F32, fb::DType_F32) && sameCode(DS_CUDA_SYNTH_F16, fb::DType_F16) &&
                  sameCode(DS_CUDA_SYNTH_BF16, fb::DType_BF16) &&
                  sameCode(DS_CUDA_SYNTH_F8_E4M3, fb::DType_F8_E4M3) &&
                  sameCode(DS_CUDA_SYNTH_I8, fb::DType_I8) && sameCode(DS_CUDA_SYNTH_I32, fb::DType_I32) &&
                  sameCode(DS_CUDA_SYNTH_I4, fb::DType_I4),
              "ds_cuda_kernels.h DS_CUDA_SYNTH_* vs artifact.fbs DType");

StatusOr<SyntheticFillPlan> planSyntheticFill(const std::vector<SyntheticFillTensor>& tensors,
                                              uint64_t seed, const ds_cuda_device_limits& dev,
                                              uint64_t call_bytes) {
  SyntheticFillPlan plan;
  for (const SyntheticFillTensor& t : tensors) {
    const std::string what = "synthetic tensor '" + t.name + "' (" + std::to_string(t.tensor) + ", " +
                             fb::EnumNameDType(t.spec.dtype) + ")";
    const int32_t dtype = static_cast<int32_t>(t.spec.dtype);
    const uint64_t unit = static_cast<uint64_t>(ds_cuda_synthetic_unit_bytes(dtype));
    if (!unit) return unsupported(what + ": the CUDA fill has no encoding for this dtype");
    const bool int4 = t.spec.dtype == fb::DType_I4;
    const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
    const uint64_t row = int4 ? static_cast<uint64_t>(std::max<int64_t>(cols, 1) + 1) / 2 : unit;
    if (t.nbytes % row)
      return dataLoss(what + ": " + std::to_string(t.nbytes) + " bytes are not whole " +
                      (int4 ? "rows of " + std::to_string(row) + " bytes" : "elements"));
    plan.total_bytes += t.nbytes;
    const uint64_t count = t.nbytes / unit;  // elements (I4: bytes)
    const uint64_t per_call = std::max<uint64_t>(1, call_bytes / unit);
    for (uint64_t first = 0; first < count; first += per_call) {
      SyntheticFillCall c;
      c.tensor = t.tensor;
      c.offset = t.offset + first * unit;
      c.params.key = synth::streamKey(seed, t.spec.stream);
      c.params.first = first;
      c.params.count = std::min(per_call, count - first);
      c.params.cols = int4 ? cols : 0;
      c.params.mean = t.spec.mean;
      c.params.std = t.spec.std;
      c.params.dtype = dtype;
      c.bytes = c.params.count * unit;
      // Validated against an address of the real one's alignment (the base is 256-aligned).
      c.params.dst = 256 + c.offset;
      ds_cuda_plan p;
      if (const char* err = ds_cuda_plan_synthetic_fill(&c.params, &dev, &p))
        return invalidArgument(what + ": " + err);
      c.params.dst = 0;
      c.launch = p.launches[0];
      plan.calls.push_back(c);
    }
  }
  return plan;
}

}  // namespace ds::hal::cuda

// What the fake CUDA driver reads from a module image (cubin ELF, fatbin, PTX text): its size,
// the architectures it runs on, and per kernel the parameter layout, .maxntid and static shared
// memory - the metadata the real driver reads to resolve, launch and validate kernels. Test-only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fake_cuda {

enum class ImageKind { Fatbin, Elf, Ptx };

struct KernelParam {
  uint32_t offset = 0, size = 0;
};

struct KernelInfo {
  std::vector<KernelParam> params;  // by ordinal
  bool params_known = false;        // false: the image's metadata could not be read
  uint32_t max_threads = 1024;      // .maxntid (EIATTR_MAX_THREADS), else the device limit
  uint32_t static_shared = 0;       // .nv.shared.<name>
  uint32_t paramBytes() const {
    uint32_t end = 0;
    for (const KernelParam& p : params) end = std::max(end, p.offset + p.size);
    return end;
  }
};

// One loadable code object of an image: an ELF cubin, or PTX text (maybe compressed: unreadable).
struct CodeEntry {
  bool elf = false;
  bool readable = true;  // false: compressed fatbin entry (names cannot be checked)
  int arch = 0;          // 90 for sm_90a / compute_90
  std::string bytes;
};

struct Image {
  ImageKind kind = ImageKind::Ptx;
  std::vector<CodeEntry> entries;
};

// Parses `data` as the driver would (sizes from the headers; PTX up to its NUL). False with
// `why` when the bytes are not a well-formed image.
bool parseImage(const void* data, Image* out, std::string* why);

// The entry a device of compute capability major.minor runs: an ELF of the same major and a
// minor <= the device's, preferring the highest; else PTX of arch <= the device's. -1: none.
int chooseEntry(const Image& image, int major, int minor);

// Looks `name` up in `entry`: ELF (.text.<name> and .nv.info.<name>) or PTX (.entry name(...)).
// False when the kernel is not there.
bool findKernel(const CodeEntry& entry, const std::string& name, KernelInfo* info);

}  // namespace fake_cuda

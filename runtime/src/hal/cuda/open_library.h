// dlopen of the first of several library names (cuBLASLt, NCCL: cuda_blaslt.cpp,
// nccl_library.cpp), with an error naming what was tried.
#pragma once

#include <dlfcn.h>

#include <string>
#include <vector>

#include "base/status.h"

namespace ds::hal::cuda {

struct OpenedLibrary {
  void* handle = nullptr;
  std::string name;  // the name that opened
};

// The first of `names` that loads (RTLD_NOW | RTLD_LOCAL). UNAVAILABLE "a, b not found" when none
// does, with the loader's words for one that exists but cannot load (wrong architecture, a
// missing dependency): "No such file" is the usual case and says nothing more.
inline StatusOr<OpenedLibrary> openFirstLibrary(const std::vector<std::string>& names) {
  std::string tried, other_error;
  for (const std::string& name : names) {
    if (void* handle = ::dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL)) return OpenedLibrary{handle, name};
    tried += (tried.empty() ? "" : ", ") + name;
    const char* why = ::dlerror();
    const std::string text = why ? why : "";
    if (!text.empty() && text.find("No such file or directory") == std::string::npos && other_error.empty())
      other_error = text;
  }
  return Status(DS_UNAVAILABLE, tried + " not found" + (other_error.empty() ? "" : " (" + other_error + ")"));
}

}  // namespace ds::hal::cuda

# Warnings, ccache and sanitizers shared by every target in the tree.
find_program(DS_CCACHE ccache)
if(DS_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${DS_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${DS_CCACHE})
  set(CMAKE_CUDA_COMPILER_LAUNCHER ${DS_CCACHE})
endif()

add_compile_options(
  "$<$<COMPILE_LANGUAGE:CXX,C>:-Wall;-Wextra;-Wno-unused-parameter>")

if(DS_ENABLE_ASAN)
  # Undefined behaviour fails the run (a report alone would let a test pass).
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=address,undefined;-fno-sanitize-recover=undefined;-fno-omit-frame-pointer>")
  add_link_options(-fsanitize=address,undefined)
endif()

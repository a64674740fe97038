# LibTorch from a folder of headers and a folder of libraries, without LibTorch's CMake config:
#  * the Maven build: headers fetched with pip (cmake/fetch_torch_headers.py), libraries unpacked
#    from the bytedeco jars (libtorch_cpu, libc10, and what they need at link time);
#  * a Python torch install whose CMake config cannot be used (a CUDA wheel on a machine without
#    the CUDA toolkit): -DPSG4J_TORCH_INCLUDE_DIR=<torch>/include -DPSG4J_TORCH_LIB_DIR=<torch>/lib.
foreach(lib torch_cpu c10)
  find_library(PSG4J_${lib}_LIBRARY NAMES ${lib} PATHS ${PSG4J_TORCH_LIB_DIR} NO_DEFAULT_PATH)
  if(NOT PSG4J_${lib}_LIBRARY)
    message(FATAL_ERROR "lib${lib}.so not found in ${PSG4J_TORCH_LIB_DIR}: run the Maven build, "
                        "which unpacks it from the bytedeco pytorch jar")
  endif()
endforeach()
if(NOT EXISTS ${PSG4J_TORCH_INCLUDE_DIR}/torch/csrc/api/include/torch/torch.h)
  message(FATAL_ERROR "no LibTorch headers in ${PSG4J_TORCH_INCLUDE_DIR}: run "
                      "cmake/fetch_torch_headers.py (the Maven build does)")
endif()
# The same floor as the find_package(Torch) path: what the core uses came with 2.10.
# (2.10 moved the numbers to torch/headeronly/version.h; older headers lack it and are refused.)
set(PSG4J_TORCH_VERSION_H ${PSG4J_TORCH_INCLUDE_DIR}/torch/headeronly/version.h)
if(NOT EXISTS ${PSG4J_TORCH_VERSION_H})
  message(FATAL_ERROR "psg4j needs LibTorch >= 2.10: ${PSG4J_TORCH_INCLUDE_DIR} has no torch/headeronly/version.h")
endif()
file(STRINGS ${PSG4J_TORCH_VERSION_H} PSG4J_TORCH_MAJOR REGEX "#define TORCH_VERSION_MAJOR ")
file(STRINGS ${PSG4J_TORCH_VERSION_H} PSG4J_TORCH_MINOR REGEX "#define TORCH_VERSION_MINOR ")
string(REGEX REPLACE ".* ([0-9]+).*" "\\1" PSG4J_TORCH_MAJOR "${PSG4J_TORCH_MAJOR}")
string(REGEX REPLACE ".* ([0-9]+).*" "\\1" PSG4J_TORCH_MINOR "${PSG4J_TORCH_MINOR}")
if("${PSG4J_TORCH_MAJOR}.${PSG4J_TORCH_MINOR}" VERSION_LESS 2.10)
  message(FATAL_ERROR "psg4j needs LibTorch >= 2.10, the headers in ${PSG4J_TORCH_INCLUDE_DIR} are "
          "${PSG4J_TORCH_MAJOR}.${PSG4J_TORCH_MINOR}")
endif()
add_library(psg4j_torch INTERFACE)
target_include_directories(psg4j_torch SYSTEM INTERFACE
  ${PSG4J_TORCH_INCLUDE_DIR}
  ${PSG4J_TORCH_INCLUDE_DIR}/torch/csrc/api/include)
# The jar's libtorch was built with GCC 11 and the cxx11 ABI, like the wheel the headers come from.
target_compile_definitions(psg4j_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
target_link_libraries(psg4j_torch INTERFACE ${PSG4J_torch_cpu_LIBRARY} ${PSG4J_c10_LIBRARY})
# A CUDA build registers its kernels from libtorch_cuda: keep it linked even though no symbol of it
# is referenced, and let its CUDA dependencies be found at run time (its own RPATH) rather than now.
find_library(PSG4J_torch_cuda_LIBRARY NAMES torch_cuda PATHS ${PSG4J_TORCH_LIB_DIR} NO_DEFAULT_PATH)
find_library(PSG4J_c10_cuda_LIBRARY NAMES c10_cuda PATHS ${PSG4J_TORCH_LIB_DIR} NO_DEFAULT_PATH)
if(PSG4J_torch_cuda_LIBRARY)
  set(PSG4J_TORCH_CUDA_LIBRARIES ${PSG4J_torch_cuda_LIBRARY})
  if(PSG4J_c10_cuda_LIBRARY)
    list(APPEND PSG4J_TORCH_CUDA_LIBRARIES ${PSG4J_c10_cuda_LIBRARY})
  endif()
  psg4j_link_kept(psg4j_torch INTERFACE ${PSG4J_TORCH_CUDA_LIBRARIES})
  target_link_options(psg4j_torch INTERFACE -Wl,--allow-shlib-undefined)
endif()
# libtorch_cpu needs libopenblas and libgomp, unpacked beside it; executables must resolve them.
target_link_options(psg4j_torch INTERFACE "-Wl,-rpath-link,${PSG4J_TORCH_LIB_DIR}")
set(CMAKE_BUILD_RPATH ${PSG4J_TORCH_LIB_DIR})

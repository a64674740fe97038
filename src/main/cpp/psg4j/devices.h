// Devices: which CUDA devices this LibTorch sees, the one parser of "cpu" / "cuda[:N]",
// and the device-generic pieces a check on CUDA needs (synchronization, the caching allocator's
// counters, float32 kept exact). Written against c10's device-generic interfaces, so the same core
// builds against the CPU headers and runs on bytedeco's CPU and GPU LibTorch alike; what needs
// CUDA's own headers (graphs, the sync-debug mode) is compiled only where PSG4J_WITH_CUDA is 1.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace psg4j {

// Whether this LibTorch has a CUDA runtime (libc10_cuda registered CUDA's device guard): false on
// bytedeco's CPU natives, true on its -gpu natives even where no device is visible.
bool cuda_runtime_loaded();
// The CUDA devices this LibTorch sees (0 where none is visible or there is no CUDA runtime).
int cuda_device_count();
// Whether this core was compiled with CUDA's own headers (PSG4J_WITH_CUDA): CUDA graphs need them.
bool cuda_compiled();

// "cpu", "cuda" (= cuda:0) or "cuda:N", any case. Throws a BadInput Error with one line naming
// the cause and the fix: an unknown name, a CPU-only LibTorch, no visible device, N out of range.
at::Device parse_device(const std::string& spec);

// Refuses (BadInput) a tensor that is not on `device`: "<what> is on cuda:0 but the check runs on cpu: ...".
void require_on_device(const at::Tensor& tensor, const at::Device& device, const std::string& what);

// Waits until all work queued on `device` has finished (a no-op on the CPU).
void synchronize(const at::Device& device);

// The caching allocator's bytes in use on a CUDA device, now and at its peak since the last reset
// (zeros on the CPU, whose memory the bench reads from the process instead).
struct DeviceMemory {
  int64_t allocated_bytes = 0;
  int64_t peak_allocated_bytes = 0;
};
DeviceMemory device_memory(const at::Device& device);
void reset_peak_memory(const at::Device& device);

// While one lives, float32 matmuls and convolutions on CUDA run in IEEE float32, not TF32. Why: a
// TF32 product rounds its inputs to 10 mantissa bits (relative error ~5e-4), so a batched candidate
// and the one-sample reference would differ far beyond the default rtol of 1e-4 with no bug in
// either. The switch is process-wide: the first scope saves the process's settings and the last
// one to end restores them (scopes may overlap on several threads); other threads' CUDA matmuls
// are exact meanwhile too. Acts on any build (the flags are at::Context's), harmlessly on the CPU.
class ExactFloat32Scope {
 public:
  ExactFloat32Scope();
  ~ExactFloat32Scope();
  ExactFloat32Scope(const ExactFloat32Scope&) = delete;
  ExactFloat32Scope& operator=(const ExactFloat32Scope&) = delete;
};

// Whether CUDA float32 matmuls or convolutions may use TF32 now (for tests that the scope restores).
bool tf32_allowed();

}  // namespace psg4j

#include "psg4j/devices.h"

#include "psg4j/error.h"
#include "psg4j/held_setting.h"

#include <ATen/Context.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace psg4j {
namespace {

const c10::impl::DeviceGuardImplInterface* cuda_guard() {
  return c10::impl::hasDeviceGuardImpl(c10::DeviceType::CUDA)
             ? c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)
             : nullptr;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

constexpr const char* kUseCpu = "use --device cpu, or run where a CUDA device is visible";

// The CUDA operations whose float32 precision TF32 may lower (cuBLAS matmuls, cuDNN convolutions
// and recurrent layers).
constexpr std::array<at::Float32Op, 3> kTf32Ops{at::Float32Op::MATMUL, at::Float32Op::CONV, at::Float32Op::RNN};

// CUDA's float32 precision for matmuls, convolutions and RNNs, held at IEEE.
struct CudaFloat32Precision {
  static std::array<at::Float32Precision, 3> save_and_hold() {
    at::Context& context = at::globalContext();
    std::array<at::Float32Precision, 3> saved{};
    for (size_t k = 0; k < kTf32Ops.size(); ++k) {
      saved[k] = context.float32Precision(at::Float32Backend::CUDA, kTf32Ops[k]);
      context.setFloat32Precision(at::Float32Backend::CUDA, kTf32Ops[k], at::Float32Precision::IEEE);
    }
    return saved;
  }
  static void restore(const std::array<at::Float32Precision, 3>& saved) {
    at::Context& context = at::globalContext();
    for (size_t k = 0; k < kTf32Ops.size(); ++k) {
      context.setFloat32Precision(at::Float32Backend::CUDA, kTf32Ops[k], saved[k]);
    }
  }
};

}  // namespace

bool cuda_runtime_loaded() { return cuda_guard() != nullptr; }

int cuda_device_count() {
  const auto* guard = cuda_guard();
  return guard == nullptr ? 0 : static_cast<int>(guard->deviceCount());
}

bool cuda_compiled() {
#if defined(PSG4J_WITH_CUDA) && PSG4J_WITH_CUDA
  return true;
#else
  return false;
#endif
}

at::Device parse_device(const std::string& spec) {
  const std::string name = lower(spec);
  if (name == "cpu") return at::Device(at::kCPU);
  int64_t index = 0;
  if (name != "cuda") {
    const std::string prefix = "cuda:";
    const std::string digits = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : "";
    if (digits.empty() || digits.size() > 3 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) {
      bad_input("unknown device '" + spec + "': use cpu, cuda or cuda:N (N = a visible CUDA device's index)");
    }
    index = std::stoll(digits);
  }
  if (!cuda_runtime_loaded()) {
    bad_input("device '" + spec + "': this LibTorch has no CUDA support (a CPU-only build, such as bytedeco's "
              "default natives): build psg4j with -Pgpu (bytedeco's linux-x86_64-gpu natives with CUDA 13.1), or " +
              kUseCpu);
  }
  const int count = cuda_device_count();
  if (count == 0) {
    bad_input("device '" + spec + "': no CUDA device is visible (check the driver with nvidia-smi and "
              "CUDA_VISIBLE_DEVICES); " + kUseCpu);
  }
  if (index >= count) {
    bad_input("device '" + spec + "' does not exist: " + std::to_string(count) + " CUDA device" +
              (count == 1 ? " is" : "s are") + " visible (cuda:0" +
              (count > 1 ? " to cuda:" + std::to_string(count - 1) : std::string()) + ")");
  }
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

void require_on_device(const at::Tensor& tensor, const at::Device& device, const std::string& what) {
  if (!tensor.defined() || tensor.device() == device) return;
  bad_input(what + " is on " + tensor.device().str() + " but the check runs on " + device.str() +
            ": put the model, the batch and the candidate on one device (or give that device)");
}

void synchronize(const at::Device& device) {
  if (device.is_cpu()) return;
  c10::impl::VirtualGuardImpl guard(device.type());
  guard.synchronizeDevice(device.has_index() ? device.index() : guard.getDevice().index());
}

DeviceMemory device_memory(const at::Device& device) {
  DeviceMemory memory;
  if (!device.is_cuda() || !cuda_runtime_loaded()) return memory;
  const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  const auto stats = c10::getDeviceAllocator(device.type())->getDeviceStats(device.has_index() ? device.index() : 0);
  memory.allocated_bytes = stats.allocated_bytes[aggregate].current;
  memory.peak_allocated_bytes = stats.allocated_bytes[aggregate].peak;
  return memory;
}

void reset_peak_memory(const at::Device& device) {
  if (!device.is_cuda() || !cuda_runtime_loaded()) return;
  c10::getDeviceAllocator(device.type())->resetPeakStats(device.has_index() ? device.index() : 0);
}

// The scope acts whether or not a CUDA runtime is loaded: the flags are at::Context's, process-wide
// on any build (setting them costs nothing on the CPU), which also lets its save and restore be
// tested on a machine without a GPU.
ExactFloat32Scope::ExactFloat32Scope() { HeldSetting<CudaFloat32Precision>::acquire(); }

ExactFloat32Scope::~ExactFloat32Scope() { HeldSetting<CudaFloat32Precision>::release(); }

bool tf32_allowed() {
  const at::Context& context = at::globalContext();
  return std::any_of(kTf32Ops.begin(), kTf32Ops.end(), [&](at::Float32Op op) {
    return context.float32Precision(at::Float32Backend::CUDA, op) == at::Float32Precision::TF32;
  });
}

}  // namespace psg4j

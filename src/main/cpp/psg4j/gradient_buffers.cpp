#include "psg4j/gradient_buffers.h"

#include "psg4j/batch.h"
#include "psg4j/error.h"

#include <ATen/MemoryOverlap.h>

#include <map>
#include <sstream>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace psg4j {
namespace {

constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

// Advice only: where the kernel has no huge pages to give, nothing changes but the speed.
void advise_huge_pages(const at::Tensor& buffer) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (!buffer.is_cpu() || buffer.nbytes() < 2 * kHugePage) return;
  const auto begin = reinterpret_cast<uintptr_t>(buffer.data_ptr());
  const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (begin + buffer.nbytes()) & ~(kHugePage - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

std::string shape_text(at::IntArrayRef shape) {
  std::ostringstream text;
  text << shape;
  return text.str();
}

void check_buffer(const std::string& name, const at::Tensor& buffer, const at::Tensor& parameter,
                  int64_t batch_size) {
  const std::string what = "the per-sample gradient buffer for parameter '" + name + "'";
  if (!buffer.defined()) bad_input(what + " is an undefined tensor");
  const std::vector<int64_t> expected = batched_shape(batch_size, parameter.sizes());
  if (buffer.sizes() != at::IntArrayRef(expected)) {
    bad_input(what + " has shape " + shape_text(buffer.sizes()) + " but must be " + shape_text(expected) +
              " ([batch size, *parameter shape])");
  }
  if (buffer.scalar_type() != parameter.scalar_type()) {
    bad_input(what + " has dtype " + std::string(c10::toString(buffer.scalar_type())) + " but the parameter has " +
              c10::toString(parameter.scalar_type()));
  }
  if (buffer.device() != parameter.device()) {
    bad_input(what + " is on " + buffer.device().str() + " but the parameter is on " + parameter.device().str());
  }
  if (!buffer.is_contiguous()) bad_input(what + " is not contiguous: pass a contiguous tensor (e.g. zeros)");
  if (buffer.requires_grad()) bad_input(what + " requires grad: pass a plain tensor (detach() it)");
}

}  // namespace

std::vector<at::Tensor> new_per_sample_buffers(int64_t batch_size, const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> buffers;
  for (const at::Tensor& p : parameters) {
    buffers.push_back(at::empty(batched_shape(batch_size, p.sizes()), p.options().requires_grad(false)));
    advise_huge_pages(buffers.back());
  }
  return buffers;
}

std::vector<at::Tensor> caller_per_sample_buffers(const NamedTensors& out, const NamedTensors& parameters,
                                                  int64_t batch_size) {
  std::map<std::string, at::Tensor> given;
  for (const auto& [name, tensor] : out) {
    if (!given.emplace(name, tensor).second) bad_input("the buffers name parameter '" + name + "' twice");
  }
  std::vector<at::Tensor> buffers;
  std::vector<std::string> names;
  for (const auto& [name, parameter] : parameters) {
    auto found = given.find(name);
    if (found == given.end()) bad_input("no per-sample gradient buffer for parameter '" + name + "'");
    check_buffer(name, found->second, parameter, batch_size);
    for (size_t k = 0; k < buffers.size(); ++k) {
      if (at::get_overlap_status(buffers[k], found->second) != at::MemOverlapStatus::No) {
        bad_input("the per-sample gradient buffers for parameters '" + names[k] + "' and '" + name +
                  "' share memory: give each parameter its own tensor");
      }
    }
    buffers.push_back(found->second);
    names.push_back(name);
    given.erase(found);
  }
  if (!given.empty()) {
    std::string known;
    for (const auto& p : parameters) known += (known.empty() ? "" : ", ") + p.first;
    bad_input("a per-sample gradient buffer is named '" + given.begin()->first +
              "', which is no trainable parameter of the model (they are: " + known + ")");
  }
  return buffers;
}

}  // namespace psg4j

#include "psg4j/op_outputs.h"

#include "psg4j/op_trace.h"

#include <torch/csrc/jit/runtime/interpreter.h>

namespace psg4j {
namespace {

struct Recording {
  std::vector<OpOutput>* outputs = nullptr;
  int64_t batch_size = 0;
};

thread_local Recording recording;

// "TOP(Net)::forward", "block(Block)::forward", "norm(LayerNorm)::forward", "::helper" -> "block.norm"
std::string module_path(const std::vector<std::string>& hierarchy) {
  std::string path;
  for (size_t k = 1; k < hierarchy.size(); ++k) {
    const std::string& frame = hierarchy[k];
    const size_t paren = frame.find('(');
    if (paren == std::string::npos || paren == 0) continue;  // a function, not a submodule
    path += (path.empty() ? "" : ".") + frame.substr(0, paren);
  }
  return path;
}

bool is_integer_samples(const c10::IValue& value, int64_t batch_size) {
  if (!value.isTensor()) return false;
  const at::Tensor& t = value.toTensor();
  if (!t.defined() || at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type())) return false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) == batch_size) return true;
  }
  return false;
}

void record_op_output(const at::RecordFunction& fn, at::ObserverContext*) {
  if (recording.outputs == nullptr) return;
  bool reads_integer_samples = false;
  for (const c10::IValue& in : fn.inputs()) reads_integer_samples |= is_integer_samples(in, recording.batch_size);
  std::string module;
  bool module_known = false;
  for (const c10::IValue& out : fn.outputs()) {
    if (!out.isTensor() || !out.toTensor().defined() || !out.toTensor().requires_grad()) continue;
    if (!module_known) {
      module = module_path(torch::jit::currentModuleHierarchy());
      module_known = true;
    }
    recording.outputs->push_back({module, out.toTensor(), reads_integer_samples});
  }
}

}  // namespace

std::vector<OpOutput> record_op_outputs(const std::function<void()>& forward, int64_t batch_size) {
  std::vector<OpOutput> outputs;
  const Recording previous = recording;
  recording = {&outputs, batch_size};
  try {
    OpObserverScope observer(nullptr, record_op_output, /*needs_inputs=*/true, /*needs_outputs=*/true);
    forward();
  } catch (...) {
    recording = previous;
    throw;
  }
  recording = previous;
  return outputs;
}

}  // namespace psg4j

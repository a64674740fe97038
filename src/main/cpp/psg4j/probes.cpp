#include "psg4j/probes.h"

#include "psg4j/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/record_function.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <functional>

namespace psg4j {
namespace {

using Forward = std::function<at::Tensor(const std::vector<at::Tensor>&)>;
using Leaks = std::map<int64_t, std::vector<int64_t>>;

int64_t physical_dim(int64_t dim, const at::Tensor& t) { return dim < 0 ? dim + t.dim() : dim; }

// Where a tensor computed from the batch keeps its samples: in the inputs' batch dimension, or
// else in dimension 0.
int64_t samples_dim(const at::Tensor& t, int64_t batch_dim, int64_t batch_size, const std::string& what) {
  if (t.dim() > batch_dim && t.size(batch_dim) == batch_size) return batch_dim;
  if (t.dim() > 0 && t.size(0) == batch_size) return 0;
  bad_input("the " + what + " has shape " + c10::str(t.sizes()) + ", with no dimension of the batch size " +
            std::to_string(batch_size) + " where the samples should be (dimension " +
            std::to_string(batch_dim) + " or 0): the batch-independence probe needs per-sample outputs");
}

// The first and the last sample and evenly spaced ones between: a few, not all B.
std::vector<int64_t> probed_samples(int64_t batch_size, int64_t count) {
  std::vector<int64_t> out;
  count = std::max<int64_t>(1, std::min(count, batch_size));
  for (int64_t k = 0; k < count; ++k) {
    const int64_t i = count == 1 ? 0 : (k * (batch_size - 1)) / (count - 1);
    if (out.empty() || out.back() != i) out.push_back(i);
  }
  return out;
}

bool all_floating(const std::vector<at::Tensor>& tensors) {
  return std::all_of(tensors.begin(), tensors.end(),
                     [](const at::Tensor& t) { return at::isFloatingType(t.scalar_type()); });
}

// Each sample's largest |value| of `t` (samples in dimension `dim`), as B doubles.
std::vector<double> per_sample_max_abs(const at::Tensor& t, int64_t dim, int64_t batch_size) {
  const at::Tensor m = t.detach().abs().movedim(dim, 0).reshape({batch_size, -1}).amax(1).to(at::kDouble).cpu();
  return std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + batch_size);
}

std::vector<int64_t> leaking_samples(const std::vector<double>& sensitivity, int64_t sample, double tolerance) {
  const double scale = std::max(*std::max_element(sensitivity.begin(), sensitivity.end()), 1e-30);
  std::vector<int64_t> from;
  for (size_t j = 0; j < sensitivity.size(); ++j) {
    if (static_cast<int64_t>(j) != sample && sensitivity[j] > tolerance * scale) from.push_back(j);
  }
  return from;
}

// Exact for float inputs: sample i's output (under fixed random weights, so no cancellation)
// differentiated with respect to every input; a nonzero gradient on sample j's slice is a leak.
Leaks gradient_leaks(const Forward& forward, const std::vector<at::Tensor>& inputs, int64_t batch_dim,
                     int64_t batch_size, const ProbeOptions& options) {
  c10::AutoGradMode grad_mode(true);
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& x : inputs) leaves.push_back(x.detach().clone().requires_grad_());
  const at::Tensor out = forward(leaves);
  const int64_t out_dim = samples_dim(out, batch_dim, batch_size, "output");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const at::Tensor weights = at::randn(out.sizes(), generator, out.options().device(at::kCPU).requires_grad(false)).to(out.device());
  Leaks leaks;
  for (int64_t i : probed_samples(batch_size, options.probe_samples)) {
    const at::Tensor score = (out.select(out_dim, i) * weights.select(out_dim, i)).sum();
    if (!score.requires_grad()) continue;  // the output does not depend on the inputs at all
    const std::vector<at::Tensor> grads = torch::autograd::grad({score}, leaves, {}, /*retain_graph=*/true,
                                                                /*create_graph=*/false, /*allow_unused=*/true);
    std::vector<double> sensitivity(batch_size, 0.0);
    for (size_t k = 0; k < grads.size(); ++k) {
      if (!grads[k].defined()) continue;
      const std::vector<double> m = per_sample_max_abs(grads[k], physical_dim(batch_dim, leaves[k]), batch_size);
      for (int64_t j = 0; j < batch_size; ++j) sensitivity[j] = std::max(sensitivity[j], m[j]);
    }
    leaks[i] = leaking_samples(sensitivity, i, options.tolerance);
  }
  return leaks;
}

// Sample j's slices replaced by those of another sample that differs (integer data), or moved
// by noise (float data).
std::vector<at::Tensor> with_sample_changed(const std::vector<at::Tensor>& inputs, int64_t batch_dim,
                                            int64_t j, int64_t batch_size, at::Generator& generator) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& x : inputs) {
    const int64_t d = physical_dim(batch_dim, x);
    at::Tensor changed = x.clone();
    at::Tensor slice = changed.select(d, j);
    if (at::isFloatingType(x.scalar_type())) {
      slice.add_(at::randn(slice.sizes(), generator, slice.options().device(at::kCPU)).to(slice.device()));
    } else {
      for (int64_t k = 1; k < batch_size; ++k) {
        const at::Tensor donor = x.select(d, (j + k) % batch_size);
        if (!at::equal(donor, slice)) {
          slice.copy_(donor);
          break;
        }
      }
    }
    out.push_back(changed);
  }
  return out;
}

// For integer inputs (token ids), which need no input gradient: change one other sample at a
// time and watch the probed sample's output.
Leaks perturbation_leaks(const Forward& forward, const std::vector<at::Tensor>& inputs, int64_t batch_dim,
                         int64_t batch_size, const ProbeOptions& options) {
  c10::NoGradGuard no_grad;
  const at::Tensor base = forward(inputs);
  const int64_t out_dim = samples_dim(base, batch_dim, batch_size, "output");
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  const std::vector<int64_t> probed = probed_samples(batch_size, options.probe_samples);
  Leaks leaks;
  for (int64_t i : probed) leaks[i] = {};
  for (int64_t j = 0; j < batch_size; ++j) {
    const at::Tensor out = forward(with_sample_changed(inputs, batch_dim, j, batch_size, generator));
    for (int64_t i : probed) {
      if (i == j) continue;
      const at::Tensor before = base.select(out_dim, i);
      const at::Tensor after = out.select(out_dim, i);
      const double scale = std::max(before.abs().max().item<double>(), 1e-30);
      if ((after - before).abs().max().item<double>() > options.tolerance * scale) leaks[i].push_back(j);
    }
  }
  return leaks;
}

Leaks leaks_of(const Forward& forward, const std::vector<at::Tensor>& inputs, int64_t batch_dim,
               int64_t batch_size, const ProbeOptions& options, std::string* method) {
  if (all_floating(inputs)) {
    *method = "input_gradient";
    return gradient_leaks(forward, inputs, batch_dim, batch_size, options);
  }
  *method = "perturbation";
  return perturbation_leaks(forward, inputs, batch_dim, batch_size, options);
}

// Probed samples whose output alone (a one-sample batch, as the reference runs it) differs from
// their output in the batch. A model that cannot run one sample (BatchNorm in train mode) gives
// no evidence here; the other routes judge it.
std::vector<int64_t> samples_differing_alone(const Model& model, const Batch& batch, const at::Tensor& full,
                                             int64_t batch_dim, int64_t batch_size, const ProbeOptions& options) {
  c10::NoGradGuard no_grad;
  const int64_t out_dim = samples_dim(full, batch_dim, batch_size, "output");
  std::vector<int64_t> differing;
  for (int64_t i : probed_samples(batch_size, options.probe_samples)) {
    at::Tensor alone;
    try {
      alone = model.forward(copies_of(batch.sample_inputs(i)));
    } catch (const std::exception&) {
      continue;
    }
    const at::Tensor in_batch = full.select(out_dim, i);
    if (alone.dim() <= out_dim || alone.size(out_dim) != 1 || !alone.select(out_dim, 0).sizes().equals(in_batch.sizes())) {
      differing.push_back(i);
      continue;
    }
    // Loose: a one-sample batch may take other kernels (GEMM blocking) than the full batch.
    const double scale = std::max(in_batch.abs().max().item<double>(), 1e-30);
    if ((alone.select(out_dim, 0) - in_batch).abs().max().item<double>() > 1e-4 * scale) differing.push_back(i);
  }
  return differing;
}

// An op's output seen during a forward, with the TorchScript submodule that ran the op.
struct OpOutput {
  std::string module;  // dotted instance path below the top module ("" for the top module itself)
  at::Tensor value;
};

thread_local std::vector<OpOutput>* op_outputs = nullptr;

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

void record_op_output(const at::RecordFunction& fn, at::ObserverContext*) {
  if (op_outputs == nullptr) return;
  const std::vector<std::string> hierarchy = torch::jit::currentModuleHierarchy();
  if (hierarchy.empty()) return;
  for (const c10::IValue& out : fn.outputs()) {
    if (out.isTensor() && out.toTensor().defined() && out.toTensor().requires_grad()) {
      op_outputs->push_back({module_path(hierarchy), out.toTensor()});
    }
  }
}

// Does sample `i` of `t` (an op's output) depend on sample `j` of the inputs? Outputs without a
// dimension of samples (a transposed weight, a batch folded into features) say nothing either way:
// they count as not mixing, so the bisection lands on an op whose output is per sample.
bool output_mixes(const at::Tensor& t, const std::vector<at::Tensor>& leaves, int64_t batch_dim, int64_t batch_size,
                  int64_t i, int64_t j, double tolerance) {
  int64_t dim;
  try {
    dim = samples_dim(t, batch_dim, batch_size, "op output");
  } catch (const Error&) {
    return false;
  }
  const at::Tensor slice = t.select(dim, i);
  if (!slice.requires_grad()) return false;
  const at::Tensor weights = at::randn_like(slice, slice.options().requires_grad(false));
  const std::vector<at::Tensor> grads = torch::autograd::grad({(slice * weights).sum()}, leaves, {},
                                                              /*retain_graph=*/true, false, /*allow_unused=*/true);
  std::vector<double> sensitivity(batch_size, 0.0);
  for (size_t k = 0; k < grads.size(); ++k) {
    if (!grads[k].defined()) continue;
    const std::vector<double> m = per_sample_max_abs(grads[k], physical_dim(batch_dim, leaves[k]), batch_size);
    for (int64_t s = 0; s < batch_size; ++s) sensitivity[s] = std::max(sensitivity[s], m[s]);
  }
  const double scale = std::max(*std::max_element(sensitivity.begin(), sensitivity.end()), 1e-30);
  return sensitivity[j] > tolerance * scale;
}

// For a TorchScript model whose forward is not a plain chain: records every op's output with
// the submodule that ran it, and finds by bisection the first output where sample i already
// depends on sample j; that op's submodule is where mixing starts.
std::string first_mixing_op_module(const Model& model, const Batch& batch, int64_t batch_dim, int64_t batch_size,
                                   int64_t i, int64_t j, const ProbeOptions& options) {
  if (!all_floating(batch.inputs)) return "";
  c10::AutoGradMode grad_mode(true);
  torch::jit::GraphOptimizerEnabledGuard plain_interpreter(false);  // every op autograd-tracked
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& x : batch.inputs) leaves.push_back(x.detach().clone().requires_grad_());
  std::vector<OpOutput> outputs;
  op_outputs = &outputs;
  const auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(nullptr, record_op_output).needsOutputs(true).scopes({at::RecordScope::FUNCTION}));
  try {
    model.forward(copies_of(leaves));
  } catch (...) {
    op_outputs = nullptr;
    at::removeCallback(handle);
    return "";
  }
  op_outputs = nullptr;
  at::removeCallback(handle);
  if (outputs.empty() ||
      !output_mixes(outputs.back().value, leaves, batch_dim, batch_size, i, j, options.tolerance)) {
    return "";
  }
  size_t low = 0, high = outputs.size() - 1;  // outputs[high] mixes
  while (low < high) {
    const size_t mid = (low + high) / 2;
    if (output_mixes(outputs[mid].value, leaves, batch_dim, batch_size, i, j, options.tolerance)) {
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  return outputs[high].module;
}

bool any_leak(const Leaks& leaks) {
  return std::any_of(leaks.begin(), leaks.end(), [](const auto& entry) { return !entry.second.empty(); });
}

// The first step of a chain whose own probe finds mixing, descending into its children; "" if
// the steps do not reproduce `expected` (the forward is not this chain) or none mixes.
std::string first_mixing_step(const std::vector<ModelStep>& steps, const at::Tensor& x, const at::Tensor& expected,
                              int64_t batch_dim, int64_t batch_size, const ProbeOptions& options) {
  if (steps.empty()) return "";
  std::vector<at::Tensor> step_inputs;
  at::Tensor h = x;
  try {
    c10::NoGradGuard no_grad;
    for (const ModelStep& step : steps) {
      step_inputs.push_back(h);
      h = step.run(h);
    }
    if (!h.sizes().equals(expected.sizes()) || !at::allclose(h, expected.detach(), 1e-4, 1e-5)) return "";
  } catch (const std::exception&) {
    return "";  // a step that cannot run alone: the forward is more than a chain
  }
  for (size_t k = 0; k < steps.size(); ++k) {
    const at::Tensor& input = step_inputs[k];
    int64_t dim;
    try {
      dim = samples_dim(input, batch_dim, batch_size, "input of " + steps[k].name);
    } catch (const Error&) {
      return steps[k].name;  // the samples are no longer separable here: mixing starts at this step
    }
    std::string method;
    const Forward run = [&](const std::vector<at::Tensor>& in) { return steps[k].run(in[0]); };
    bool mixes;
    try {
      mixes = any_leak(leaks_of(run, {input}, dim, batch_size, options, &method));
    } catch (const Error&) {
      return steps[k].name;  // its output has lost the per-sample layout
    }
    if (!mixes) continue;
    at::Tensor step_output;
    {
      c10::NoGradGuard no_grad;
      step_output = steps[k].run(input);
    }
    const std::string deeper = first_mixing_step(steps[k].children(), input, step_output, dim, batch_size, options);
    return deeper.empty() ? steps[k].name : deeper;
  }
  return "";
}

}  // namespace

BatchIndependence probe_batch_independence(const Model& model, const Batch& batch, const ProbeOptions& options) {
  const int64_t batch_size = batch.validate();
  const int64_t batch_dim = physical_dim(batch.batch_dim, batch.inputs[0]);
  // Every probe forward gets copies: a model may write into its inputs in place.
  const Forward forward = [&](const std::vector<at::Tensor>& inputs) { return model.forward(copies_of(inputs)); };
  BatchIndependence result;
  try {
    result.leaks = leaks_of(forward, batch.inputs, batch_dim, batch_size, options, &result.method);
    at::Tensor output;  // the batch's output, which the other routes compare with
    {
      c10::NoGradGuard no_grad;
      output = forward(batch.inputs);
    }
    result.differs_alone = samples_differing_alone(model, batch, output, batch_dim, batch_size, options);
    result.independent = !any_leak(result.leaks) && result.differs_alone.empty();
    if (!result.independent && batch.inputs.size() == 1) {
      result.mixing_module = first_mixing_step(model.steps(), batch.inputs[0], output, batch_dim, batch_size, options);
    }
    if (!result.independent && result.mixing_module.empty()) {
      for (const auto& [i, from] : result.leaks) {
        if (from.empty()) continue;
        result.mixing_module = first_mixing_op_module(model, batch, batch_dim, batch_size, i, from.front(), options);
        break;
      }
    }
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::ModelFailure, "probing " + model.describe() + " failed: " + e.what_without_backtrace());
  }
  return result;
}

Determinism probe_determinism(const Model& model, const Batch& batch) {
  batch.validate();
  c10::NoGradGuard no_grad;
  try {
    const at::Tensor first = model.forward(copies_of(batch.inputs));
    const at::Tensor second = model.forward(copies_of(batch.inputs));
    Determinism result;
    if (!first.sizes().equals(second.sizes())) {
      result.deterministic = false;
      result.max_abs_diff = std::numeric_limits<double>::infinity();
      return result;
    }
    result.max_abs_diff = (first.to(at::kDouble) - second.to(at::kDouble)).abs().max().item<double>();
    result.deterministic = at::equal(first, second);
    return result;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::ModelFailure, "running " + model.describe() + " twice failed: " + e.what_without_backtrace());
  }
}

}  // namespace psg4j

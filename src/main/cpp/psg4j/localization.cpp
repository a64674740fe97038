#include "psg4j/localization.h"

#include "psg4j/error.h"
#include "psg4j/leak_detection.h"
#include "psg4j/run_alone.h"
#include "psg4j/samples_layout.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <optional>

namespace psg4j {
namespace {

// Does the step mix samples on this input, by either route? A step whose output has lost the
// per-sample layout counts as mixing: the samples cannot be told apart after it.
bool step_mixes(const ModelStep& step, const at::Tensor& input, int64_t dim, int64_t batch_size,
                const LocalizationOptions& options) {
  const Forward run = [&](const std::vector<at::Tensor>& in) { return step.run(in[0]); };
  at::Tensor output;
  {
    c10::NoGradGuard no_grad;
    output = run({input});
  }
  const std::optional<int64_t> output_dim = samples_dim(output, dim, batch_size);
  if (!output_dim) return true;
  const DifferentiableForward graph = differentiable_forward(run, {input}, dim, batch_size, *output_dim);
  LeakFinder finder(graph, batch_size, options.tolerance, options.seed);
  if (!partition_passes(finder, batch_size).sources.empty()) return true;
  Batch alone_batch;
  alone_batch.inputs = {input};
  alone_batch.batch_dim = dim;
  return !compare_alone(run, alone_batch, output, *output_dim).differing.empty();
}

// The first step of a chain whose own probe finds mixing, descending into its children; "" if
// the steps do not reproduce `expected` (the forward is not this chain) or none mixes.
std::string first_mixing_step_of(const std::vector<ModelStep>& steps, const at::Tensor& x, const at::Tensor& expected,
                                 int64_t batch_dim, int64_t batch_size, const LocalizationOptions& options) {
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
    const std::optional<int64_t> dim = samples_dim(input, batch_dim, batch_size);
    if (!dim) return steps[k].name;  // the samples are no longer separable here: mixing starts at this step
    bool mixes;
    try {
      mixes = step_mixes(steps[k], input, *dim, batch_size, options);
    } catch (const Error&) {
      return steps[k].name;
    }
    if (!mixes) continue;
    const at::Tensor& step_output = k + 1 < steps.size() ? step_inputs[k + 1] : h;
    const std::string deeper = first_mixing_step_of(steps[k].children(), input, step_output, *dim, batch_size, options);
    return deeper.empty() ? steps[k].name : deeper;
  }
  return "";
}

// Does sample `target` of `t` (an op's output) depend on sample `source` of the graph's sources?
// Outputs without a dimension of samples (a transposed weight, a batch folded into features) say
// nothing either way: they count as not mixing, so the bisection lands on an op whose output is
// per sample.
bool output_mixes(const at::Tensor& t, const DifferentiableForward& graph, int64_t batch_dim, int64_t batch_size,
                  int64_t target, int64_t source, double tolerance) {
  const std::optional<int64_t> dim = samples_dim(t, batch_dim, batch_size);
  if (!dim) return false;
  DifferentiableForward view = graph;
  view.output = t;
  view.output_dim = *dim;
  LeakFinder finder(view, batch_size, tolerance, /*seed=*/target);
  const std::vector<int64_t> sources = finder.sources_of({target});
  return std::find(sources.begin(), sources.end(), source) != sources.end();
}

}  // namespace

std::string first_mixing_step(const Model& model, const Batch& batch, const at::Tensor& batch_output,
                              const LocalizationOptions& options) {
  if (batch.inputs.size() != 1) return "";
  const int64_t batch_size = batch.validate();
  const int64_t batch_dim = normalized_dim(batch.inputs[0], batch.batch_dim, "input 0");
  return first_mixing_step_of(model.steps(), batch.inputs[0], batch_output, batch_dim, batch_size, options);
}

std::string first_mixing_op_module(const Model& model, const Batch& batch, int64_t target, int64_t source,
                                   const LocalizationOptions& options) {
  const int64_t batch_size = batch.validate();
  const int64_t batch_dim = normalized_dim(batch.inputs[0], batch.batch_dim, "input 0");
  const Forward forward = [&](const std::vector<at::Tensor>& in) { return model.forward(copies_of(in)); };
  DifferentiableForward graph;
  try {
    graph = differentiable_forward(forward, batch.inputs, batch_dim, batch_size, /*output_dim=*/0,
                                   /*record_ops=*/true);
  } catch (const std::exception&) {
    return "";
  }
  const std::vector<OpOutput>& outputs = graph.ops;
  c10::AutoGradMode grad_mode(true);
  if (outputs.empty() ||
      !output_mixes(outputs.back().value, graph, batch_dim, batch_size, target, source, options.tolerance)) {
    return "";
  }
  size_t low = 0, high = outputs.size() - 1;  // outputs[high] mixes
  while (low < high) {
    const size_t mid = (low + high) / 2;
    if (output_mixes(outputs[mid].value, graph, batch_dim, batch_size, target, source, options.tolerance)) {
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  return outputs[high].module;
}

}  // namespace psg4j

#include "psg4j/reference.h"

#include "psg4j/error.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <c10/util/Exception.h>

namespace psg4j {
namespace {

std::vector<at::Tensor> tensors_of(const NamedTensors& named) {
  std::vector<at::Tensor> out;
  out.reserve(named.size());
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}

}  // namespace

std::vector<at::Tensor> sample_gradient(const Problem& problem, const NamedTensors& parameters,
                                        int64_t i) {
  c10::AutoGradMode grad_mode(true);
  const std::vector<at::Tensor> leaves = tensors_of(parameters);
  try {
    // Copies, not views: a model that writes into its input must not change the caller's batch.
    const at::Tensor output = problem.model.forward(copies_of(problem.batch.sample_inputs(i)));
    const at::Tensor loss =
        problem.loss(output, copies_of(problem.batch.sample_targets(i)), problem.reduction, /*batch_size=*/1);
    if (!loss.requires_grad()) {
      throw Error(ErrorKind::ModelFailure,
                  "the loss of sample " + std::to_string(i) +
                      " does not depend on any trainable parameter: check that the model's "
                      "parameters require grad and that the forward uses them");
    }
    std::vector<at::Tensor> grads = torch::autograd::grad({loss}, leaves, {}, /*retain_graph=*/false,
                                                          /*create_graph=*/false,
                                                          /*allow_unused=*/true);
    for (size_t k = 0; k < grads.size(); ++k) {
      if (!grads[k].defined()) grads[k] = at::zeros_like(leaves[k]);
    }
    return grads;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::ModelFailure, "running " + problem.model.describe() + " on sample " +
                                             std::to_string(i) + " failed: " +
                                             cause_first(e.what_without_backtrace()));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // the TorchScript interpreter rethrows op errors as these
    throw Error(ErrorKind::ModelFailure, "running " + problem.model.describe() + " on sample " +
                                             std::to_string(i) + " failed: " + cause_first(e.what()));
  }
}

void check_targets(const Problem& problem, int64_t begin, int64_t end) {
  // Only class indices have values to check; the other losses' targets are checked by shape.
  if (problem.loss.kind != LossKind::CrossEntropy || problem.batch.targets.empty()) return;
  at::Tensor output;
  try {
    c10::NoGradGuard no_grad;
    output = problem.model.forward(copies_of(problem.batch.sample_inputs(begin)));
  } catch (const std::exception&) {
    return;  // the model's own failure: the reference reports it, naming the sample
  }
  std::vector<at::Tensor> targets;
  for (const at::Tensor& t : problem.batch.targets) {
    const int64_t dim = problem.batch.target_batch_dim;
    targets.push_back(t.narrow(dim < 0 ? dim + t.dim() : dim, begin, end - begin));
  }
  check_class_indices(problem.loss, output, targets, problem.batch.target_batch_dim, begin);
}

void for_each_sample_gradient(const Problem& problem, const NamedTensors& parameters,
                              const SampleVisitor& visit) {
  const int64_t batch_size = problem.batch.validate();
  check_targets(problem, 0, batch_size);
  at::parallel_for(0, batch_size, /*grain_size=*/1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) visit(i, sample_gradient(problem, parameters, i));
  });
}

NamedTensors microbatch_gradients(const Problem& problem) {
  const NamedTensors parameters = problem.model.trainable_parameters();
  const int64_t batch_size = problem.batch.validate();
  NamedTensors out;
  out.reserve(parameters.size());
  for (const auto& [name, p] : parameters) {
    out.emplace_back(name, at::empty(batched_shape(batch_size, p.sizes()), p.options().requires_grad(false)));
  }
  for_each_sample_gradient(problem, parameters, [&](int64_t i, const std::vector<at::Tensor>& g) {
    for (size_t k = 0; k < g.size(); ++k) out[k].second.select(0, i).copy_(g[k]);
  });
  return out;
}

}  // namespace psg4j

#include "psg4j/norms.h"

#include <c10/core/GradMode.h>

#include <cmath>

namespace psg4j {

double l2_norm(const at::Tensor& g) {
  if (g.numel() == 0) return 0.0;
  return at::linalg_vector_norm(g.detach(), 2, c10::nullopt, false, at::kDouble).item<double>();
}

namespace {

// reference_norms on a device: each sample's norms written by index into [P, B] on its
// worker's stream, the whole-gradient norms from them after the pass, one read for all.
SampleNorms norms_on_device(const Problem& problem, const Spread& spread, SampleNorms out, const NamedTensors& leaves,
                            int64_t batch_size, const at::Device& device) {
  c10::NoGradGuard no_grad;
  const int64_t params = static_cast<int64_t>(out.parameters.size());
  const at::Tensor per_parameter = at::zeros({params, batch_size}, at::TensorOptions().dtype(at::kDouble).device(device));
  for_each_reference_gradient(problem.model, problem.batch, problem.loss, {problem.reduction}, leaves, spread,
                              [&](int64_t i, const ReferenceGradient& g) {
    c10::NoGradGuard no_grad_here;
    for (int64_t p = 0; p < params; ++p) {
      if (g.grads[p].numel() == 0) continue;
      per_parameter.select(0, p).select(0, i).copy_(
          at::linalg_vector_norm(g.grads[p].detach(), 2, c10::nullopt, false, at::kDouble) * std::abs(g.scale));
    }
  });
  out.per_parameter = per_parameter.cpu();
  out.whole = out.per_parameter.square().sum(0).sqrt();
  return out;
}

}  // namespace

SampleNorms reference_norms(const Problem& problem, const Spread& spread) {
  const int64_t batch_size = problem.batch.validate();
  SampleNorms out;
  out.parameters = problem.model.parameters();
  const int64_t params = static_cast<int64_t>(out.parameters.size());
  NamedTensors leaves;
  for (const TrainableParameter& p : out.parameters) leaves.emplace_back(p.name, p.tensor);
  if (params > 0 && !out.parameters.front().tensor.device().is_cpu()) {
    const at::Device device = out.parameters.front().tensor.device();
    return norms_on_device(problem, spread, std::move(out), leaves, batch_size, device);
  }
  out.per_parameter = at::zeros({params, batch_size}, at::kDouble);
  out.whole = at::zeros({batch_size}, at::kDouble);
  double* per_parameter = out.per_parameter.mutable_data_ptr<double>();
  double* whole = out.whole.mutable_data_ptr<double>();
  // Each visit writes its own sample's column only: no two workers touch the same entry.
  for_each_reference_gradient(problem.model, problem.batch, problem.loss, {problem.reduction}, leaves, spread,
                              [&](int64_t i, const ReferenceGradient& g) {
    double squares = 0;
    for (int64_t p = 0; p < params; ++p) {
      const double norm = std::abs(g.scale) * l2_norm(g.grads[p]);
      per_parameter[p * batch_size + i] = norm;
      squares += norm * norm;
    }
    whole[i] = std::sqrt(squares);
  });
  return out;
}

}  // namespace psg4j

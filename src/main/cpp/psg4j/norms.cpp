#include "psg4j/norms.h"

#include <cmath>

namespace psg4j {

double l2_norm(const at::Tensor& g) {
  if (g.numel() == 0) return 0.0;
  return at::linalg_vector_norm(g.detach(), 2, c10::nullopt, false, at::kDouble).item<double>();
}

SampleNorms reference_norms(const Problem& problem, const Spread& spread) {
  const int64_t batch_size = problem.batch.validate();
  SampleNorms out;
  out.parameters = problem.model.parameters();
  const int64_t params = static_cast<int64_t>(out.parameters.size());
  NamedTensors leaves;
  for (const TrainableParameter& p : out.parameters) leaves.emplace_back(p.name, p.tensor);
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

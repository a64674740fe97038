#include "psg4j/run_alone.h"

#include "psg4j/samples_layout.h"
#include "psg4j/transforms.h"

#include <ATen/functorch/BatchedFallback.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <limits>
#include <optional>

namespace psg4j {
namespace {

// The outputs of every sample alone, [B, *one-sample output shape], from one vmapped forward;
// none where vmap cannot run the model (.item(), data-dependent control flow, in-place writes).
std::optional<at::Tensor> vmapped_alone(const Forward& forward, const Batch& batch, int64_t batch_size) {
  at::functorch::setVmapFallbackWarningEnabled(false);  // fallback kernels are correct, only slower
  const std::vector<at::Tensor> inputs = copies_of(batch.inputs);  // plain tensors, before the level
  try {
    Unbatched result;
    {
      VmapLevel vmap(batch_size, Randomness::Error);
      result = unbatch(forward(one_sample_batches(vmap, inputs, batch.batch_dim)), vmap.id());
    }
    return batch_first(result, batch_size);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The outputs of every sample alone, one forward each; none if one cannot run alone.
std::optional<at::Tensor> per_sample_alone(const Forward& forward, const Batch& batch, int64_t batch_size,
                                           int64_t* forwards) {
  std::vector<at::Tensor> outputs;
  for (int64_t i = 0; i < batch_size; ++i) {
    try {
      ++*forwards;
      outputs.push_back(forward(batch.sample_inputs(i)));
    } catch (const std::exception&) {
      return std::nullopt;
    }
    if (!outputs.back().sizes().equals(outputs.front().sizes())) return at::Tensor();  // layouts differ
  }
  return at::stack(outputs);
}

// Samples whose alone output (entry i of `alone`, a one-sample output) differs from the batch's.
std::vector<int64_t> differing_samples(const at::Tensor& alone, const at::Tensor& batch_output, int64_t output_dim,
                                       int64_t batch_size) {
  std::vector<int64_t> all(batch_size);
  for (int64_t i = 0; i < batch_size; ++i) all[i] = i;
  // Each sample alone keeps a samples dimension of size 1 where the batch has B.
  if (!alone.defined() || alone.dim() != batch_output.dim() + 1 || alone.size(1 + output_dim) != 1) return all;
  const at::Tensor mine = alone.select(1 + output_dim, 0).to(at::kDouble).reshape({batch_size, -1});
  const at::Tensor theirs = batch_output.detach().movedim(output_dim, 0).to(at::kDouble).reshape({batch_size, -1});
  if (!mine.sizes().equals(theirs.sizes())) return all;
  const double rtol = alone_rtol(batch_output.scalar_type());
  const at::Tensor scale = at::clamp_min(theirs.abs().amax(1), theirs.abs().max().item<double>());
  const at::Tensor differs =
      (((mine - theirs).abs().amax(1) > rtol * scale) | (mine.isnan() != theirs.isnan()).any(1)).cpu().contiguous();
  const bool* flags = differs.data_ptr<bool>();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batch_size; ++i) {
    if (flags[i]) out.push_back(i);
  }
  return out;
}

}  // namespace

std::string route_name(AloneRoute route) {
  switch (route) {
    case AloneRoute::Vmap: return "vmap";
    case AloneRoute::PerSample: return "per_sample";
    case AloneRoute::None: break;
  }
  return "none";
}

double alone_rtol(at::ScalarType dtype) {
  double eps = std::numeric_limits<float>::epsilon();
  if (dtype == at::kDouble) eps = std::numeric_limits<double>::epsilon();
  if (dtype == at::kHalf) eps = 9.77e-4;
  if (dtype == at::kBFloat16) eps = 7.81e-3;
  return std::max(1000 * eps, 1e-10);
}

AloneFindings compare_alone(const Forward& forward, const Batch& batch, const at::Tensor& batch_output,
                            int64_t output_dim) {
  c10::NoGradGuard no_grad;
  const int64_t batch_size = batch_output.size(output_dim);
  AloneFindings findings;
  std::optional<at::Tensor> alone = vmapped_alone(forward, batch, batch_size);
  findings.vmapped_forwards = 1;
  findings.route = AloneRoute::Vmap;
  if (!alone) {
    alone = per_sample_alone(forward, batch, batch_size, &findings.sample_forwards);
    findings.route = AloneRoute::PerSample;
  }
  if (!alone) {
    findings.route = AloneRoute::None;
    return findings;
  }
  findings.differing = differing_samples(*alone, batch_output, output_dim, batch_size);
  return findings;
}

}  // namespace psg4j

#include "psg4j/probes.h"

#include "psg4j/error.h"
#include "psg4j/leak_detection.h"
#include "psg4j/localization.h"
#include "psg4j/run_alone.h"
#include "psg4j/samples_layout.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <set>

namespace psg4j {
namespace {

// `count` of `pool` (sorted): the first, the last and evenly spaced ones between.
std::vector<int64_t> spread(const std::vector<int64_t>& pool, int64_t count) {
  if (static_cast<int64_t>(pool.size()) <= count) return pool;
  std::vector<int64_t> out;
  const int64_t n = static_cast<int64_t>(pool.size());
  for (int64_t k = 0; k < count; ++k) {
    const int64_t at = count == 1 ? 0 : (k * (n - 1)) / (count - 1);
    if (out.empty() || out.back() != pool[at]) out.push_back(pool[at]);
  }
  return out;
}

std::vector<int64_t> sorted(const std::set<int64_t>& s) { return {s.begin(), s.end()}; }

NonFinite non_finite_inputs(const Batch& batch, int64_t batch_size) {
  std::set<int64_t> samples;
  for (const at::Tensor& x : batch.inputs) {
    for (int64_t i : non_finite_samples(x, normalized_dim(x, batch.batch_dim), batch_size)) samples.insert(i);
  }
  return {samples.empty() ? "" : "input", sorted(samples)};
}

void require_floating_output(const at::Tensor& output, const Model& model) {
  if (!output.defined()) bad_input("the forward of " + model.describe() + " returned no tensor: return the model's output");
  if (at::isFloatingType(output.scalar_type())) return;
  bad_input("the output of " + model.describe() + " is " + std::string(c10::toString(output.scalar_type())) +
            ": per-sample gradients need a floating-point output (return the logits or scores, not argmax, "
            "class indices or a comparison)");
}

bool same_values(const at::Tensor& a, const at::Tensor& b) {
  if (!a.sizes().equals(b.sizes())) return false;
  const at::Tensor x = a.detach(), y = b.detach();
  return ((x == y) | (x.isnan() & y.isnan())).all().item<bool>();
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (!a.sizes().equals(b.sizes())) return std::numeric_limits<double>::infinity();
  return (a.detach().to(at::kDouble) - b.detach().to(at::kDouble)).abs().nan_to_num(0.0).max().item<double>();
}

// `first` (no grad) and `second` (grad mode, the gradient route's) of the same batch. Grad mode
// may take other kernels than no-grad mode, so where they differ a third no-grad forward decides.
Determinism determinism_of(const at::Tensor& first, const at::Tensor& second, const std::function<at::Tensor()>& again,
                           ProbeCost& cost) {
  if (same_values(first, second)) return {};
  const at::Tensor third = again();
  ++cost.batched_forwards;
  if (!same_values(first, third)) return {false, max_abs_diff(first, third)};
  const double diff = max_abs_diff(first, second);
  const double scale = first.detach().abs().nan_to_num(0.0).max().item<double>();
  if (diff <= alone_rtol(first.scalar_type()) * scale) return {};  // rounding, not randomness
  return {false, diff};
}

// The samples to name sources for: with evidence of samples alone, the ones that differ alone
// and those the partition passes decode; without it, the decoded ones, then others spread over
// the batch. At most `bound`.
std::vector<int64_t> samples_to_report(const PartitionFindings& partition, const AloneFindings& alone,
                                       int64_t batch_size, int64_t bound, bool* all_candidates) {
  std::set<int64_t> candidates(alone.differing.begin(), alone.differing.end());
  for (const auto& entry : partition.decoded_targets) candidates.insert(entry.second);
  std::vector<int64_t> chosen = spread(sorted(candidates), bound);
  *all_candidates = chosen.size() == candidates.size();
  if (alone.route != AloneRoute::None) return chosen;
  std::vector<int64_t> others;
  for (int64_t i = 0; i < batch_size; ++i) {
    if (!candidates.count(i)) others.push_back(i);
  }
  for (int64_t i : spread(others, bound - static_cast<int64_t>(chosen.size()))) chosen.push_back(i);
  std::sort(chosen.begin(), chosen.end());
  *all_candidates = static_cast<int64_t>(chosen.size()) == batch_size;
  return chosen;
}

// Each source leaks into exactly the one target its bits name, and every reported target's
// sources decode to it: the partition passes alone told which samples leak into which.
bool decoded_exactly(const PartitionFindings& partition, const std::map<int64_t, std::vector<int64_t>>& leaks) {
  for (const int64_t source : partition.sources) {
    const auto decoded = partition.decoded_targets.find(source);
    if (decoded == partition.decoded_targets.end()) return false;
    const auto target = leaks.find(decoded->second);
    if (target == leaks.end()) return false;
    if (std::find(target->second.begin(), target->second.end(), source) == target->second.end()) return false;
  }
  for (const auto& [target, sources] : leaks) {
    for (int64_t s : sources) {
      const auto decoded = partition.decoded_targets.find(s);
      if (decoded == partition.decoded_targets.end() || decoded->second != target) return false;
    }
  }
  return true;
}

std::string mixing_module_of(const Model& model, const Batch& batch, const at::Tensor& output,
                             const BatchIndependence& found, const ProbeOptions& options) {
  const LocalizationOptions localization{options.tolerance, options.seed};
  std::string module = first_mixing_step(model, batch, output, localization);
  if (!module.empty()) return module;
  for (const auto& [target, sources] : found.leaks) {
    return first_mixing_op_module(model, batch, target, sources.front(), localization);
  }
  return "";
}

BatchIndependence find_mixing(const Model& model, const Batch& batch, const Forward& forward, const at::Tensor& output,
                              int64_t output_dim, const DifferentiableForward& graph, const ProbeOptions& options,
                              ProbeCost& cost) {
  const int64_t batch_size = output.size(output_dim);
  LeakFinder finder(graph, batch_size, options.tolerance, options.seed);
  const PartitionFindings partition = partition_passes(finder, batch_size);
  const AloneFindings alone = compare_alone(forward, batch, output, output_dim);
  (alone.route == AloneRoute::PerSample ? cost.sample_forwards : cost.vmapped_forwards) += alone.forwards;
  BatchIndependence result;
  result.method = !finder.usable() ? "value" : graph.from_intermediate ? "intermediate_gradient" : "input_gradient";
  result.alone_route = route_name(alone.route);
  result.sources = partition.sources;
  result.differs_alone = alone.differing;
  result.independent = partition.sources.empty() && alone.differing.empty();
  if (!result.independent) {
    bool all_candidates = true;
    for (int64_t i : samples_to_report(partition, alone, batch_size, options.probe_samples, &all_candidates)) {
      std::vector<int64_t> sources = finder.sources_of({i});
      if (!sources.empty()) result.leaks[i] = std::move(sources);
    }
    std::set<int64_t> affected(alone.differing.begin(), alone.differing.end());
    for (const auto& entry : result.leaks) affected.insert(entry.first);
    result.affected = sorted(affected);
    const bool decoded = decoded_exactly(partition, result.leaks);
    result.dense = !decoded || !all_candidates;
    result.leaks_complete = all_candidates || (alone.route == AloneRoute::None && decoded);
    result.mixing_module = mixing_module_of(model, batch, output, result, options);
  }
  cost.vjps += finder.vjps();
  return result;
}

}  // namespace

ProbeResult probe(const Model& model, const Batch& batch, const ProbeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const int64_t batch_size = batch.validate();
  const int64_t batch_dim = normalized_dim(batch.inputs[0], batch.batch_dim, "input 0");
  if (options.probe_samples < 1 || options.probe_samples > kMaxProbeSamples) {
    bad_input("probe samples must be in [1, " + std::to_string(kMaxProbeSamples) + "], got " +
              std::to_string(options.probe_samples));
  }
  // Every probe forward gets copies: a model may write into its inputs in place.
  const Forward forward = [&](const std::vector<at::Tensor>& inputs) { return model.forward(copies_of(inputs)); };
  const auto no_grad_forward = [&] {
    c10::NoGradGuard no_grad;
    return forward(batch.inputs);
  };
  ProbeResult result;
  try {
    result.non_finite = non_finite_inputs(batch, batch_size);
    if (result.non_finite.samples.empty()) {
      const at::Tensor output = no_grad_forward();
      ++result.cost.batched_forwards;
      require_floating_output(output, model);
      const int64_t output_dim = require_samples_dim(output, batch_dim, batch_size, "output of " + model.describe());
      const std::vector<int64_t> bad = non_finite_samples(output, output_dim, batch_size);
      if (!bad.empty()) {
        result.non_finite = {"output", bad};
      } else {
        const DifferentiableForward graph =
            differentiable_forward(forward, batch.inputs, batch_dim, batch_size, output_dim);
        ++result.cost.batched_forwards;
        result.determinism = determinism_of(output, graph.output, no_grad_forward, result.cost);
        if (result.determinism.deterministic) {
          result.independence = find_mixing(model, batch, forward, output, output_dim, graph, options, result.cost);
        }
      }
    }
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::ModelFailure, "probing " + model.describe() + " failed: " + e.what_without_backtrace());
  }
  result.cost.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return result;
}

BatchIndependence probe_batch_independence(const Model& model, const Batch& batch, const ProbeOptions& options) {
  ProbeResult result = probe(model, batch, options);
  if (!result.non_finite.samples.empty()) {
    bad_input("the " + result.non_finite.where + " of samples " + list_of(result.non_finite.samples) +
              " holds NaN or Inf: the batch-independence probe needs finite values; fix or drop those samples");
  }
  if (!result.independence) {
    bad_input("two forwards of the same batch differ: the batch-independence probe needs a deterministic "
              "forward; put the model in eval mode (dropout) or fix the seed");
  }
  return *result.independence;
}

Determinism probe_determinism(const Model& model, const Batch& batch) {
  batch.validate();
  c10::NoGradGuard no_grad;
  try {
    const at::Tensor first = model.forward(copies_of(batch.inputs));
    const at::Tensor second = model.forward(copies_of(batch.inputs));
    if (same_values(first, second)) return {};
    return {false, max_abs_diff(first, second)};
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::ModelFailure, "running " + model.describe() + " twice failed: " + e.what_without_backtrace());
  }
}

}  // namespace psg4j

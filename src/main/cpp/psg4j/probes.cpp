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

// Every sample some source may leak into: the source XOR each nonzero subset of its differing
// bits (a source with several targets shows only the union of their differences).
std::set<int64_t> possible_targets(const PartitionFindings& partition, int64_t batch_size) {
  std::set<int64_t> out;
  for (const auto& [source, bits] : partition.differing_bits) {
    for (uint64_t subset = bits; subset != 0; subset = (subset - 1) & bits) {
      const int64_t target = source ^ static_cast<int64_t>(subset);
      if (target < batch_size) out.insert(target);
      if (static_cast<int64_t>(out.size()) == batch_size) return out;
    }
  }
  return out;
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

// Names the sources of the flagged samples, one VJP each, at most `bound` of them: first those that
// differ alone and those the partition passes decode; where the decoding does not account for
// every leak, then the affected samples the target side finds.
void name_sources(LeakFinder& finder, const PartitionFindings& partition, const AloneFindings& alone,
                  int64_t batch_size, int64_t bound, BatchIndependence& result) {
  std::set<int64_t> named;
  const auto name = [&](const std::vector<int64_t>& samples) {
    for (int64_t i : samples) {
      if (!named.insert(i).second) continue;
      std::vector<int64_t> sources = finder.sources_of({i});
      if (!sources.empty()) result.leaks[i] = std::move(sources);
    }
  };
  std::set<int64_t> flagged(alone.differing.begin(), alone.differing.end());
  for (const auto& entry : partition.decoded_targets) flagged.insert(entry.second);
  name(spread(sorted(flagged), bound));
  bool complete = named.size() == flagged.size();
  const bool decoded = decoded_exactly(partition, result.leaks);
  std::set<int64_t> affected(alone.differing.begin(), alone.differing.end());
  if (!decoded) {
    // The partition passes do not tell the pairs: the target side tells every affected sample
    // (or, where the model has no double backward, every sample a source may leak into).
    const std::optional<std::vector<int64_t>> targets = partition_targets(finder, batch_size);
    if (targets) affected.insert(targets->begin(), targets->end());
    std::vector<int64_t> others;
    for (int64_t i : targets ? std::set<int64_t>(targets->begin(), targets->end())
                             : possible_targets(partition, batch_size)) {
      if (!named.count(i)) others.push_back(i);
    }
    const int64_t room = std::max<int64_t>(0, bound - static_cast<int64_t>(named.size()));
    const std::vector<int64_t> more = spread(others, room);
    name(more);
    complete = complete && more.size() == others.size();
  }
  for (const auto& entry : result.leaks) affected.insert(entry.first);
  result.affected = sorted(affected);
  result.dense = !decoded || !complete;
  result.leaks_complete = complete;
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
  cost.vmapped_forwards += alone.vmapped_forwards;
  cost.sample_forwards += alone.sample_forwards;
  BatchIndependence result;
  result.method = !finder.usable() ? "value" : graph.from_intermediate ? "intermediate_gradient" : "input_gradient";
  result.alone_route = route_name(alone.route);
  result.sources = partition.sources;
  result.differs_alone = alone.differing;
  result.independent = partition.sources.empty() && alone.differing.empty();
  if (!result.independent) {
    name_sources(finder, partition, alone, batch_size, options.probe_samples, result);
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

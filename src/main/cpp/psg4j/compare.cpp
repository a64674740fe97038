#include "psg4j/compare.h"

#include "psg4j/error.h"
#include "psg4j/model_variants.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>

#include <map>
#include <memory>
#include <optional>

namespace psg4j {
namespace {


ParamComparison entry_for(const std::string& name, const TrainableParameter& p, int64_t batch_size,
                          const at::Tensor& candidate) {
  ParamComparison entry;
  entry.name = name;
  entry.expected_shape = batched_shape(batch_size, p.tensor.sizes());
  for (const std::string& other : p.aliases) {
    if (other != name) entry.aliases.push_back(other);
  }
  if (name != p.name) entry.aliases.insert(entry.aliases.begin(), p.name);
  if (!candidate.defined()) {
    entry.status = ParamStatus::Missing;
    return entry;
  }
  entry.candidate_shape = candidate.sizes().vec();
  if (entry.candidate_shape != entry.expected_shape) {
    entry.status = ParamStatus::Shape;
  } else if (!at::isFloatingType(candidate.scalar_type())) {
    bad_input("candidate gradient '" + name + "' has dtype " + std::string(c10::toString(candidate.scalar_type())) +
              ": per-sample gradients must be floating-point tensors");
  }
  return entry;
}

}  // namespace

// One ParamComparison per model parameter (one per name the candidate gives it, when it names a
// tied parameter by several of its names: each must match) and per extra candidate name.
std::vector<ComparedCandidate> plan_comparison(Comparison& comparison, const TrainableParameters& parameters,
                                               int64_t batch_size, const NamedTensors& candidate) {
  std::map<std::string, at::Tensor> remaining;
  for (const auto& [name, tensor] : candidate) {
    if (!tensor.defined()) bad_input("candidate gradient '" + name + "' is an undefined tensor");
    if (tensor.layout() != at::kStrided) {
      bad_input("candidate gradient '" + name + "' is a sparse tensor (layout " + c10::str(tensor.layout()) +
                "): save dense tensors (t.to_dense())");
    }
    if (!remaining.emplace(name, tensor).second) {
      bad_input("candidate names parameter '" + name + "' twice: give each parameter once");
    }
  }
  comparison.batch_size = batch_size;
  std::vector<ComparedCandidate> compared;
  for (size_t k = 0; k < parameters.size(); ++k) {
    const TrainableParameter& p = parameters[k];
    std::vector<std::string> names{p.name};
    names.insert(names.end(), p.aliases.begin(), p.aliases.end());
    bool found = false;
    for (const std::string& name : names) {
      auto given = remaining.find(name);
      if (given == remaining.end()) continue;
      found = true;
      comparison.params.push_back(entry_for(name, p, batch_size, given->second));
      if (comparison.params.back().status == ParamStatus::Compared) {
        compared.push_back({comparison.params.size() - 1, k, given->second});
      }
      remaining.erase(given);
    }
    if (!found) comparison.params.push_back(entry_for(p.name, p, batch_size, at::Tensor()));
  }
  for (const auto& [name, tensor] : remaining) {
    ParamComparison entry;
    entry.name = name;
    entry.status = ParamStatus::Extra;
    entry.candidate_shape = tensor.sizes().vec();
    comparison.params.push_back(std::move(entry));
  }
  return compared;
}

namespace {

// The widening the rule gives a sample whose rounding level is `level`.
double widening_of(const Tolerance& tolerance, double level) {
  return tolerance.rule == ToleranceRule::Rounding ? kRoundingMultiple * level : 0.0;
}

// The sample's rounding level: λ times its reference's rms (none where λ was not measured).
double level_of(double rounding_per_rms, double reference_rms) {
  return std::isnan(rounding_per_rms) ? 0.0 : rounding_per_rms * reference_rms;
}

// Passes over contiguous host memory, branch-free so the compiler vectorizes them: the hot loop of
// a check on CPU. The first takes the reference's rms (the sample's rounding level, which widens
// every element's tolerance under the rounding rule); the second compares; a third, for a sample
// with an element outside tolerance only, takes what the diagnoses read (excess, reference_max),
// kept out of the second because every reduction added there slows all samples. x - x == 0 holds
// exactly for finite x (it is NaN for NaN and Inf), and a NaN difference fails `diff <= allowed`,
// so non-finite elements count as bad without a branch. The reference is r × scale (a sum
// gradient standing in for the mean one; × 1 is exact).
template <typename T>
SampleStats compare_host(const T* c, const T* r, int64_t n, const Tolerance& tolerance, double reference_scale,
                         double rounding_per_rms) {
  using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const Acc scale = static_cast<Acc>(reference_scale);
  double squares = 0;
#pragma omp simd reduction(+ : squares)
  for (int64_t k = 0; k < n; ++k) {
    const Acc v = static_cast<Acc>(r[k]) * scale;
    const double square = static_cast<double>(v) * v;
    squares += square - square == 0 ? square : 0.0;
  }
  const double rms = n > 0 ? std::sqrt(squares / static_cast<double>(n)) : 0.0;
  const double level = level_of(rounding_per_rms, rms);
  const Acc atol = static_cast<Acc>(tolerance.atol);
  const Acc rtol = static_cast<Acc>(tolerance.rtol);
  const Acc widening = static_cast<Acc>(widening_of(tolerance, level));
  Acc max_abs = 0, max_rel = 0, max_ratio = 0;
  int64_t bad = 0, c_non_finite = 0, r_non_finite = 0;
#pragma omp simd reduction(max : max_abs, max_rel, max_ratio) \
    reduction(+ : bad, c_non_finite, r_non_finite)
  for (int64_t k = 0; k < n; ++k) {
    const Acc cv = static_cast<Acc>(c[k]);
    const Acc rv = static_cast<Acc>(r[k]) * scale;
    const bool c_finite = (cv - cv) == 0;
    const bool r_finite = (rv - rv) == 0;
    const Acc abs_ref = std::abs(rv);
    const Acc allowed = atol + rtol * abs_ref + widening;
    const Acc raw = std::abs(cv - rv);
    const Acc diff = (c_finite && r_finite) ? raw : Acc(0);
    bad += !(raw <= allowed);
    c_non_finite += !c_finite;
    r_non_finite += !r_finite;
    max_abs = diff > max_abs ? diff : max_abs;
    const Acc rel = diff / (abs_ref > atol ? abs_ref : atol);
    max_rel = rel > max_rel ? rel : max_rel;
    const Acc ratio = diff / allowed;
    max_ratio = ratio > max_ratio ? ratio : max_ratio;
  }
  SampleStats stats;
  stats.max_abs_err = max_abs;
  stats.max_rel_err = max_rel;
  stats.max_tol_ratio = max_ratio;
  stats.bad = bad;
  stats.candidate_non_finite = c_non_finite;
  stats.reference_non_finite = r_non_finite;
  stats.rounding_level = level;
  stats.reference_rms = rms;
  if (bad == 0) return stats;
  const Acc lowest = std::numeric_limits<Acc>::lowest();
  Acc excess = lowest, reference_max = 0;
#pragma omp simd reduction(max : excess, reference_max)
  for (int64_t k = 0; k < n; ++k) {
    const Acc cv = static_cast<Acc>(c[k]);
    const Acc rv = static_cast<Acc>(r[k]) * scale;
    const bool r_finite = (rv - rv) == 0;
    const bool both_finite = (cv - cv) == 0 && r_finite;
    const Acc abs_ref = std::abs(rv);
    const Acc over = both_finite ? std::abs(cv - rv) - (atol + rtol * abs_ref) : lowest;
    excess = over > excess ? over : excess;
    const Acc magnitude = r_finite ? abs_ref : Acc(0);
    reference_max = magnitude > reference_max ? magnitude : reference_max;
  }
  stats.excess = excess == lowest ? 0.0 : static_cast<double>(excess);
  stats.reference_max = reference_max;
  return stats;
}

// The numbers (SampleStats order) as one [kFields] double tensor on the gradients' device, queued
// on the current stream: no host read.
at::Tensor packed_stats_on_device(const at::Tensor& candidate, const at::Tensor& reference,
                                  const Tolerance& tolerance, double reference_scale, double rounding_per_rms) {
  c10::NoGradGuard no_grad;
  const at::Tensor r = reference.detach().to(at::kDouble) * reference_scale;
  const at::Tensor c = candidate.detach().to(r.device(), at::kDouble);
  const at::Tensor c_finite = c.isfinite();
  const at::Tensor r_finite = r.isfinite();
  const at::Tensor both_finite = c_finite.logical_and(r_finite);
  const at::Tensor abs_ref = r.abs().masked_fill(r_finite.logical_not(), 0);
  const at::Tensor rms = abs_ref.square().mean().sqrt();
  const at::Tensor level = std::isnan(rounding_per_rms) ? at::zeros_like(rms) : rms * rounding_per_rms;
  const at::Tensor diff = (c - r).abs().masked_fill(both_finite.logical_not(), 0);
  const at::Tensor base = abs_ref * tolerance.rtol + tolerance.atol;
  const at::Tensor allowed = base + level * widening_of(tolerance, 1.0);
  const at::Tensor outside = diff.gt(allowed).logical_or(both_finite.logical_not());
  const double lowest = std::numeric_limits<double>::lowest();
  const at::Tensor over = (diff - base).masked_fill(both_finite.logical_not(), lowest).max();
  return at::stack({diff.max(), (diff / abs_ref.clamp_min(tolerance.atol)).max(), (diff / allowed).max(),
                    outside.sum().to(at::kDouble), c_finite.logical_not().sum().to(at::kDouble),
                    r_finite.logical_not().sum().to(at::kDouble), level, at::where(over.gt(lowest), over, 0.0), rms,
                    abs_ref.max()});
}

SampleStats stats_of_row(const double* v) {
  SampleStats stats;
  stats.max_abs_err = v[0];
  stats.max_rel_err = v[1];
  stats.max_tol_ratio = v[2];
  stats.bad = static_cast<int64_t>(v[3]);
  stats.candidate_non_finite = static_cast<int64_t>(v[4]);
  stats.reference_non_finite = static_cast<int64_t>(v[5]);
  stats.rounding_level = v[6];
  stats.excess = v[7];
  stats.reference_rms = v[8];
  stats.reference_max = v[9];
  return stats;
}

// One sample's numbers read back at once (compare_sample's answer for device tensors; the
// streaming checks use DeviceStats instead, which reads once per check).
SampleStats compare_on_device(const at::Tensor& candidate, const at::Tensor& reference,
                              const Tolerance& tolerance, double reference_scale, double rounding_per_rms) {
  const at::Tensor packed =
      packed_stats_on_device(candidate, reference, tolerance, reference_scale, rounding_per_rms).cpu();
  return stats_of_row(packed.const_data_ptr<double>());
}

// Per-sample statistics of one Comparison kept on the device while the reference streams (issue
// 11): [entries compared, B, SampleStats::kFields] doubles, each (entry, sample) row written by index on the worker
// stream that computed it, read with one transfer when the pass has ended (run_on_streams has
// then ordered the caller's stream after every worker's). Rows of distinct samples are distinct
// memory, so workers never write the same bytes.
class DeviceStats {
 public:
  DeviceStats(size_t entries, int64_t batch_size, const at::Device& device)
      : rows_(at::zeros({static_cast<int64_t>(entries), batch_size, SampleStats::kFields},
                        at::TensorOptions().dtype(at::kDouble).device(device))) {}

  void record(size_t slot, int64_t i, const at::Tensor& candidate, const at::Tensor& reference,
              const Tolerance& tolerance, double reference_scale, double rounding_per_rms) {
    if (reference.numel() == 0) return;  // zeros, as compare_sample gives
    c10::NoGradGuard no_grad;
    rows_.select(0, static_cast<int64_t>(slot)).select(0, i)
        .copy_(packed_stats_on_device(candidate, reference, tolerance, reference_scale, rounding_per_rms));
  }

  // The statistics into `comparison`'s entries, `which` in slot order.
  void to_host(Comparison& comparison, const std::vector<ComparedCandidate>& which) const {
    const at::Tensor host = rows_.cpu();
    const double* v = host.const_data_ptr<double>();
    const int64_t batch_size = rows_.size(1);
    for (size_t slot = 0; slot < which.size(); ++slot) {
      std::vector<SampleStats>& samples = comparison.params[which[slot].entry].samples;
      samples.resize(batch_size);
      for (int64_t i = 0; i < batch_size; ++i) {
        samples[i] = stats_of_row(v + (static_cast<int64_t>(slot) * batch_size + i) * SampleStats::kFields);
      }
    }
  }

 private:
  at::Tensor rows_;
};

// Where a comparison's numbers are accumulated: the device of the candidates when any is on an
// accelerator (then the reference is there too: require_on_device checks both agree), else the host.
std::optional<at::Device> accelerator_of(const std::vector<ComparedCandidate>& which) {
  for (const ComparedCandidate& c : which) {
    if (!c.candidate.device().is_cpu()) return c.candidate.device();
  }
  return std::nullopt;
}

}  // namespace

SampleStats compare_sample(const at::Tensor& candidate, const at::Tensor& reference,
                           const Tolerance& tolerance, double reference_scale, double rounding_per_rms) {
  if (reference.numel() == 0) return SampleStats{};
  if (!reference.device().is_cpu() || !candidate.device().is_cpu()) {
    return compare_on_device(candidate, reference, tolerance, reference_scale, rounding_per_rms);
  }
  // A candidate of another precision is compared in double, keeping both exact.
  const at::ScalarType common = candidate.scalar_type() == reference.scalar_type()
                                    ? reference.scalar_type()
                                    : at::kDouble;
  const at::Tensor c = candidate.detach().to(common).contiguous();
  const at::Tensor r = reference.detach().to(common).contiguous();
  SampleStats stats;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, common, "psg4j_compare_sample", [&] {
    stats = compare_host(c.const_data_ptr<scalar_t>(), r.const_data_ptr<scalar_t>(), r.numel(), tolerance,
                         reference_scale, rounding_per_rms);
  });
  return stats;
}

// ---- Value diagnoses: fingerprints taken while the reference streams ----
namespace {

void start_fingerprints_of(Comparison& comparison, const std::vector<ComparedCandidate>& which,
                           const TrainableParameters& parameters) {
  for (const ComparedCandidate& c : which) {
    comparison.params[c.entry].fingerprints =
        start_fingerprints(parameters[c.parameter].tensor.sizes(), comparison.batch_size, c.candidate.device());
  }
}

void fingerprints_to_host_of(Comparison& comparison, const std::vector<ComparedCandidate>& which) {
  for (const ComparedCandidate& c : which) fingerprints_to_host(*comparison.params[c.entry].fingerprints);
}

// One comparison's per-sample accumulation: on the host (the vectorized loop, written straight
// into its entries) or on the device (DeviceStats, read once at the end).
class ComparisonSink {
 public:
  // `rounding` holds each entry's λ (rounding.h), in `which` order; empty where not measured.
  ComparisonSink(Comparison& comparison, const std::vector<ComparedCandidate>& which, const Tolerance& tolerance,
                 std::vector<double> rounding)
      : comparison_(comparison), which_(which), tolerance_(tolerance), rounding_(std::move(rounding)) {
    for (const ComparedCandidate& c : which) {
      comparison.params[c.entry].samples.resize(comparison.batch_size);
      comparison.params[c.entry].rounding_measured = !rounding_.empty();
    }
    if (const auto device = accelerator_of(which)) device_.emplace(which.size(), comparison.batch_size, *device);
  }

  // Sample i's statistics and fingerprints, `reference_of(c)` being the reference gradient of
  // the candidate entry c.
  template <typename ReferenceOf>
  void record(int64_t i, const ReferenceOf& reference_of, double scale) {
    for (size_t slot = 0; slot < which_.size(); ++slot) {
      const ComparedCandidate& c = which_[slot];
      const at::Tensor candidate = c.candidate.select(0, i);
      const at::Tensor& reference = reference_of(c);
      const double rounding = rounding_.empty() ? std::numeric_limits<double>::quiet_NaN() : rounding_[slot];
      if (device_) {
        device_->record(slot, i, candidate, reference, tolerance_, scale, rounding);
      } else {
        comparison_.params[c.entry].samples[i] = compare_sample(candidate, reference, tolerance_, scale, rounding);
      }
      take_fingerprints(*comparison_.params[c.entry].fingerprints, i, candidate, reference, scale);
    }
  }

  // After the pass: the device's numbers into the comparison.
  void finish() {
    if (!device_) return;
    device_->to_host(comparison_, which_);
    fingerprints_to_host_of(comparison_, which_);
  }

 private:
  Comparison& comparison_;
  const std::vector<ComparedCandidate>& which_;
  const Tolerance& tolerance_;
  std::vector<double> rounding_;
  std::optional<DeviceStats> device_;
};

}  // namespace
// ---- end of the value-diagnoses block ----

namespace {

// The reference's leaves: each parameter that some comparison needs, once, in model order, and
// where each parameter's is.
struct Leaves {
  NamedTensors tensors;
  std::map<size_t, size_t> of_parameter;
};

Leaves leaves_of(const TrainableParameters& parameters, const std::vector<std::vector<ComparedCandidate>>& compared,
                 const std::function<bool(const ComparedCandidate&, size_t comparison)>& wanted) {
  std::vector<bool> needed(parameters.size(), false);
  for (size_t k = 0; k < compared.size(); ++k) {
    for (const ComparedCandidate& c : compared[k]) needed[c.parameter] = needed[c.parameter] || wanted(c, k);
  }
  Leaves leaves;
  for (size_t p = 0; p < parameters.size(); ++p) {
    if (!needed[p]) continue;
    leaves.of_parameter[p] = leaves.tensors.size();
    leaves.tensors.emplace_back(parameters[p].name, parameters[p].tensor);
  }
  return leaves;
}

// Each entry's λ for comparison k, in `which` order.
std::vector<double> rounding_of(const RoundingLevels& levels, size_t k, const std::vector<ComparedCandidate>& which,
                                const Leaves& leaves) {
  std::vector<double> out;
  if (levels.per_rms.empty()) return out;  // not measured
  for (const ComparedCandidate& c : which) out.push_back(levels.per_rms[k][leaves.of_parameter.at(c.parameter)]);
  return out;
}

void record_yardstick(const std::vector<Comparison*>& comparisons, const RoundingLevels& levels) {
  for (Comparison* comparison : comparisons) {
    comparison->rounding_yardstick = levels.yardstick;
    comparison->rounding_samples = levels.samples;
  }
}

bool fails_on_values(const ParamComparison& entry) {
  return std::any_of(entry.samples.begin(), entry.samples.end(), [](const SampleStats& s) {
    return s.bad > 0 && s.candidate_non_finite == 0 && s.reference_non_finite == 0;
  });
}

// The allclose rule measures nothing up front; where a parameter failed on its values, its
// rounding level is measured afterwards so that a failure at rounding level can say so.
void explain_allclose_failures(const Model& model, const Batch& batch, const Loss& loss,
                               const std::vector<Reduction>& reductions, const TrainableParameters& parameters,
                               const std::vector<Comparison*>& comparisons,
                               const std::vector<std::vector<ComparedCandidate>>& compared, const Spread& spread) {
  const Leaves failing = leaves_of(parameters, compared, [&](const ComparedCandidate& c, size_t k) {
    return fails_on_values(comparisons[k]->params[c.entry]);
  });
  if (failing.tensors.empty()) return;
  const RoundingLevels levels = measure_rounding(model, batch, loss, reductions, failing.tensors, spread);
  record_yardstick(comparisons, levels);
  if (levels.per_rms.empty()) return;
  for (size_t k = 0; k < compared.size(); ++k) {
    for (const ComparedCandidate& c : compared[k]) {
      auto leaf = failing.of_parameter.find(c.parameter);
      if (leaf == failing.of_parameter.end() || !fails_on_values(comparisons[k]->params[c.entry])) continue;
      comparisons[k]->params[c.entry].rounding_measured = true;
      for (SampleStats& s : comparisons[k]->params[c.entry].samples) {
        s.rounding_level = level_of(levels.per_rms[k][leaf->second], s.reference_rms);
      }
    }
  }
}

// Streams the reference of what `compared` needs (comparisons[k]'s entries compared[k], under
// reductions[k]) into the comparisons: one pass for every reduction, the rounding level measured
// first under the rounding rule.
void stream_comparisons(const Model& model, const Batch& batch, const Loss& loss,
                        const std::vector<Reduction>& reductions, const TrainableParameters& parameters,
                        const std::vector<Comparison*>& comparisons,
                        const std::vector<std::vector<ComparedCandidate>>& compared, const Tolerance& tolerance,
                        const Spread& spread) {
  const std::string precision = parameters.empty() ? "" : precision_name(parameters.front().tensor.scalar_type());
  for (Comparison* comparison : comparisons) comparison->reference_precision = precision;
  const Leaves leaves = leaves_of(parameters, compared, [](const ComparedCandidate&, size_t) { return true; });
  if (leaves.tensors.empty()) return;
  std::optional<RoundingLevels> levels;
  if (tolerance.rule == ToleranceRule::Rounding) {
    levels = measure_rounding(model, batch, loss, reductions, leaves.tensors, spread);
    record_yardstick(comparisons, *levels);
  }
  std::vector<std::unique_ptr<ComparisonSink>> sinks;
  for (size_t k = 0; k < compared.size(); ++k) {
    start_fingerprints_of(*comparisons[k], compared[k], parameters);
    sinks.push_back(std::make_unique<ComparisonSink>(*comparisons[k], compared[k], tolerance,
                                                     levels ? rounding_of(*levels, k, compared[k], leaves)
                                                            : std::vector<double>{}));
  }
  const std::string route = for_each_reference_gradient(model, batch, loss, reductions, leaves.tensors, spread,
                                                        [&](int64_t i, const ReferenceGradient& g) {
    sinks[g.reduction]->record(i, [&](const ComparedCandidate& c) -> const at::Tensor& {
      return g.grads[leaves.of_parameter.at(c.parameter)];
    }, g.scale);
  });
  for (size_t k = 0; k < compared.size(); ++k) {
    sinks[k]->finish();
    comparisons[k]->reference_route = route;
  }
  if (tolerance.rule == ToleranceRule::Allclose) {
    explain_allclose_failures(model, batch, loss, reductions, parameters, comparisons, compared, spread);
  }
}

}  // namespace

void compare_exactly(const Model& model, const Batch& batch, const Loss& loss, const std::vector<Reduction>& reductions,
                     const TrainableParameters& parameters, const std::vector<std::vector<ComparedCandidate>>& which,
                     const Tolerance& tolerance, const std::vector<Comparison*>& comparisons, const Spread& spread) {
  std::vector<Reduction> asked;
  std::vector<std::vector<ComparedCandidate>> entries;
  std::vector<Comparison*> targets;
  for (size_t k = 0; k < which.size(); ++k) {
    if (which[k].empty()) continue;  // no backward for a reduction with nothing to compare
    asked.push_back(reductions[k]);
    entries.push_back(which[k]);
    targets.push_back(comparisons[k]);
  }
  if (!asked.empty()) stream_comparisons(model, batch, loss, asked, parameters, targets, entries, tolerance, spread);
}

std::vector<Comparison> compare_with_reference(const Model& model, const Batch& batch, const Loss& loss,
                                               const std::vector<ReductionCandidate>& candidates,
                                               const Tolerance& tolerance, const Spread& spread) {
  const int64_t batch_size = batch.validate();
  const TrainableParameters parameters = model.parameters();
  std::vector<Comparison> comparisons(candidates.size());
  std::vector<std::vector<ComparedCandidate>> compared;
  std::vector<Reduction> reductions;
  std::vector<Comparison*> targets;
  for (size_t k = 0; k < candidates.size(); ++k) {
    compared.push_back(plan_comparison(comparisons[k], parameters, batch_size, candidates[k].candidate));
    reductions.push_back(candidates[k].reduction);
    targets.push_back(&comparisons[k]);
  }
  stream_comparisons(model, batch, loss, reductions, parameters, targets, compared, tolerance, spread);
  return comparisons;
}

Comparison compare_with_reference(const Problem& problem, const NamedTensors& candidate,
                                  const Tolerance& tolerance, const Spread& spread) {
  std::vector<Comparison> one = compare_with_reference(problem.model, problem.batch, problem.loss,
                                                       {ReductionCandidate{problem.reduction, candidate}}, tolerance,
                                                       spread);
  return std::move(one.front());
}

at::Tensor stats_tensor(const Comparison& comparison) {
  const int64_t params = static_cast<int64_t>(comparison.params.size());
  at::Tensor out = at::zeros({params, comparison.batch_size, SampleStats::kFields}, at::kDouble);
  double* v = out.mutable_data_ptr<double>();
  for (int64_t p = 0; p < params; ++p) {
    const std::vector<SampleStats>& samples = comparison.params[p].samples;
    for (size_t i = 0; i < samples.size(); ++i) {
      const SampleStats& s = samples[i];
      double* row = v + (p * comparison.batch_size + static_cast<int64_t>(i)) * SampleStats::kFields;
      row[0] = s.max_abs_err;
      row[1] = s.max_rel_err;
      row[2] = s.max_tol_ratio;
      row[3] = static_cast<double>(s.bad);
      row[4] = static_cast<double>(s.candidate_non_finite);
      row[5] = static_cast<double>(s.reference_non_finite);
      row[6] = s.rounding_level;
      row[7] = s.excess;
      row[8] = s.reference_rms;
      row[9] = s.reference_max;
    }
  }
  return out;
}

}  // namespace psg4j

#include "psg4j/clipped_sum.h"

#include "psg4j/error.h"
#include "psg4j/cuda_reference.h"
#include "psg4j/norms.h"

#include <ATen/Dispatch.h>
#include <c10/core/Event.h>
#include <c10/core/GradMode.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>

namespace psg4j {

double clip_factor(double threshold, double norm) { return std::min(1.0, threshold / (norm + kClipEpsilon)); }

std::vector<double> parameter_thresholds(const Clipping& clipping, size_t parameter_count) {
  for (double t : clipping.thresholds) {
    if (!std::isfinite(t) || t <= 0) {
      bad_input("a clipping threshold must be finite and > 0, got " + c10::str(t) +
                ": give the max grad norm C of your DP optimizer (e.g. 1.0)");
    }
  }
  const size_t given = clipping.thresholds.size();
  if (clipping.mode == ClippingMode::Flat) {
    if (given != 1) bad_input("flat clipping takes one threshold C, got " + std::to_string(given));
    return std::vector<double>(parameter_count, clipping.thresholds[0]);
  }
  if (given == 1) {  // one C split the way Opacus's examples split it: the total stays C
    return std::vector<double>(parameter_count, clipping.thresholds[0] / std::sqrt(double(parameter_count)));
  }
  if (given != parameter_count) {
    bad_input("per-layer clipping takes one C (split as C/sqrt(P)) or one threshold per trainable parameter (" +
              std::to_string(parameter_count) + " here, in named_parameters() order, a tied one once), got " +
              std::to_string(given));
  }
  return clipping.thresholds;
}

namespace {

// How one sample's clip factors are made: the reference's rule, or a known bug's variant of it.
struct FactorRule {
  ClippingMode mode = ClippingMode::Flat;  // flat: one factor from the whole norm; per-layer: one per parameter
  std::vector<double> thresholds;          // per parameter (flat: C for each)
  bool clip = true;                        // false: every factor 1
  bool floored = true;                     // min(1, ·)
  double epsilon = kClipEpsilon;
  double norm_divisor = 1;                 // B where the clipped gradients were the batch-mean loss's (g / B)

  void factors(const std::vector<double>& norms, double whole, double* out) const {
    for (size_t p = 0; p < norms.size(); ++p) {
      if (!clip) {
        out[p] = 1;
        continue;
      }
      const double norm = (mode == ClippingMode::Flat ? whole : norms[p]) / norm_divisor;
      const double f = thresholds[p] / (norm + epsilon);
      out[p] = floored ? std::min(1.0, f) : f;
    }
  }
};

// What the rules are made from.
struct ClipContext {
  ClippingMode mode;
  std::vector<double> thresholds;  // the reference's, per parameter
  double total;                    // flat: C; per-layer: ‖(C_1, ..., C_P)‖₂ (DPPerLayerOptimizer's max_grad_norm)
  bool split;                      // per-layer thresholds made from one C
  Reduction reduction;
  int64_t batch_size;

  FactorRule reference() const { return FactorRule{mode, thresholds}; }
};

// A known clipping bug: a variant of the reference's rule, and what the candidate sum is of its sum.
struct Suspect {
  const char* kind;
  const char* explanation;
  bool (*applies)(const ClipContext&);
  FactorRule (*rule)(const ClipContext&);
  bool divided_by_batch;  // the candidate is that sum / B
};

bool always(const ClipContext&) { return true; }
bool mean_loss(const ClipContext& c) { return c.reduction == Reduction::Mean && c.batch_size > 1; }
bool per_layer(const ClipContext& c) { return c.mode == ClippingMode::PerLayer && c.thresholds.size() > 1; }
bool split_per_layer(const ClipContext& c) { return per_layer(c) && c.split; }
bool flat(const ClipContext& c) { return c.mode == ClippingMode::Flat && c.thresholds.size() > 1; }

FactorRule same(const ClipContext& c) { return c.reference(); }
FactorRule unfloored(const ClipContext& c) { FactorRule r = c.reference(); r.floored = false; return r; }
FactorRule unclipped(const ClipContext& c) { FactorRule r = c.reference(); r.clip = false; return r; }
FactorRule no_epsilon(const ClipContext& c) { FactorRule r = c.reference(); r.epsilon = 0; return r; }
FactorRule on_mean_gradients(const ClipContext& c) {
  FactorRule r = c.reference();
  r.norm_divisor = static_cast<double>(c.batch_size);
  return r;
}
FactorRule each_at_total(const ClipContext& c) {
  FactorRule r = c.reference();
  std::fill(r.thresholds.begin(), r.thresholds.end(), c.total);
  return r;
}
FactorRule split_linearly(const ClipContext& c) {
  FactorRule r = c.reference();
  std::fill(r.thresholds.begin(), r.thresholds.end(), c.total / double(r.thresholds.size()));
  return r;
}
FactorRule as_flat(const ClipContext& c) {
  FactorRule r = c.reference();
  r.mode = ClippingMode::Flat;
  std::fill(r.thresholds.begin(), r.thresholds.end(), c.total);
  return r;
}
FactorRule as_split_per_layer(const ClipContext& c) {
  FactorRule r = c.reference();
  r.mode = ClippingMode::PerLayer;
  std::fill(r.thresholds.begin(), r.thresholds.end(), c.total / std::sqrt(double(r.thresholds.size())));
  return r;
}

// One line per known bug; a diagnosis names those that reproduce a failing parameter.
const std::vector<Suspect>& suspects() {
  static const std::vector<Suspect> all = {
      {"clipping_not_floored", "the clip factor C/(‖g‖+1e-6) was not floored at 1 (min(1, ·)): samples whose norm "
       "is below the threshold were scaled up instead of kept", always, unfloored, false},
      {"not_clipped", "the sum is of unclipped per-sample gradients (every factor 1): clipping was skipped", always,
       unclipped, false},
      {"clip_epsilon_missing", "the clip factor was C/‖g‖, without Opacus's + 1e-6 (it matters for small norms)",
       always, no_epsilon, false},
      {"clipping_before_mean_scaling", "the gradients of the batch-mean loss were clipped before the ×B that makes "
       "them per-sample gradients (the factor used ‖g‖/B)", mean_loss, on_mean_gradients, false},
      {"clipping_before_mean_scaling", "the gradients of the batch-mean loss were clipped and summed without the ×B "
       "that makes them per-sample gradients", mean_loss, on_mean_gradients, true},
      {"per_layer_thresholds_unsplit", "each parameter was clipped at the whole C instead of its share C/sqrt(P)",
       split_per_layer, each_at_total, false},
      {"per_layer_thresholds_split_linearly", "each parameter was clipped at C/P (thresholds summing to C) instead of "
       "C/sqrt(P) (thresholds whose L2 norm is C)", split_per_layer, split_linearly, false},
      {"clipped_flat_not_per_layer", "the whole gradient was clipped at once (flat, at the L2 norm of the per-layer "
       "thresholds) instead of each parameter at its own threshold", per_layer, as_flat, false},
      {"clipped_per_layer_not_flat", "each parameter was clipped on its own (per-layer, at C/sqrt(P)) instead of the "
       "whole gradient at C", flat, as_split_per_layer, false},
      {"clipped_sum_divided_by_batch", "the clipped sum was divided by B (p.grad after the optimizer's averaging, "
       "or a mean over samples): give the sum, Opacus's p.summed_grad", always, same, true},
  };
  return all;
}

// The candidate entry of each parameter, in model order, and the name it was given under.
struct PlannedCandidate {
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
};

std::string shape_string(at::IntArrayRef shape) { return c10::str(shape); }

PlannedCandidate plan_candidate(const TrainableParameters& parameters, int64_t batch_size,
                                const NamedTensors& candidate) {
  std::map<std::string, at::Tensor> remaining;
  for (const auto& [name, tensor] : candidate) {
    if (!tensor.defined()) bad_input("candidate clipped sum '" + name + "' is an undefined tensor");
    if (tensor.layout() != at::kStrided) {
      bad_input("candidate clipped sum '" + name + "' is a sparse tensor: save dense tensors (t.to_dense())");
    }
    if (!remaining.emplace(name, tensor).second) {
      bad_input("candidate clipped sum names parameter '" + name + "' twice: give each parameter once");
    }
  }
  PlannedCandidate out;
  for (const TrainableParameter& p : parameters) {
    std::vector<std::string> names{p.name};
    names.insert(names.end(), p.aliases.begin(), p.aliases.end());
    std::vector<std::string> given;
    for (const std::string& n : names) {
      if (remaining.count(n) != 0) given.push_back(n);
    }
    if (given.empty()) {
      bad_input("the candidate clipped sum has no entry for trainable parameter '" + p.name + "' (shape " +
                shape_string(p.tensor.sizes()) + "): give every parameter with requires_grad, e.g. "
                "{n: p.summed_grad for n, p in model.named_parameters()}");
    }
    if (given.size() > 1) {
      bad_input("the candidate clipped sum gives tied parameter '" + p.name + "' twice (as '" + given[0] + "' and '" +
                given[1] + "'): one tensor has one sum, give it once");
    }
    const at::Tensor t = remaining.at(given[0]);
    remaining.erase(given[0]);
    if (t.sizes() != p.tensor.sizes()) {
      std::string hint;
      if (t.dim() == p.tensor.dim() + 1 && t.size(0) == batch_size && t.sizes().slice(1) == p.tensor.sizes()) {
        hint = ": it looks like per-sample gradients (check those with --candidate), not their clipped sum";
      }
      bad_input("candidate clipped sum '" + given[0] + "' has shape " + shape_string(t.sizes()) +
                " but a sum over samples has the parameter's shape " + shape_string(p.tensor.sizes()) + hint);
    }
    if (!at::isFloatingType(t.scalar_type())) {
      bad_input("candidate clipped sum '" + given[0] + "' has dtype " + std::string(c10::toString(t.scalar_type())) +
                ": save floating-point tensors");
    }
    out.names.push_back(given[0]);
    out.tensors.push_back(t);
  }
  if (!remaining.empty()) {
    bad_input("the candidate clipped sum has an entry '" + remaining.begin()->first + "', which is not a trainable "
              "parameter of the model (a frozen one has no gradient: leave it out; names as named_parameters() "
              "gives them, e.g. '0.weight')");
  }
  return out;
}

// Hands entries to `accumulate` in rising sample order, whichever worker delivers them: one that
// arrives early waits until those before it are in, and one thread drains at a time (outside the
// lock), so sums come out the same at any worker count.
template <typename Entry>
class InSampleOrder {
 public:
  template <typename Accumulate>
  void add(int64_t i, Entry entry, Accumulate&& accumulate) {
    std::unique_lock<std::mutex> lock(mutex_);
    pending_.emplace(i, std::move(entry));
    if (draining_) return;
    draining_ = true;
    for (auto next = pending_.find(next_); next != pending_.end(); next = pending_.find(next_)) {
      Entry ready = std::move(next->second);
      pending_.erase(next);
      lock.unlock();
      accumulate(ready);
      lock.lock();
      ++next_;
    }
    draining_ = false;
  }

 private:
  std::mutex mutex_;
  std::map<int64_t, Entry> pending_;
  int64_t next_ = 0;
  bool draining_ = false;
};

// Σ over samples of factor · gradient, for several factor rules at once, added in sample order
// whichever worker finishes first: a sample that is early waits in the queue (its gradient
// handles and factors, no copy) until the ones before it are in; whoever adds drains what is
// next. So the sums are the same at any worker count, and no worker ever blocks on another's
// sample (a sample that fails is never added, and nothing waits for it). The queue holds only the
// samples finished ahead of a slower one, about one per worker when samples cost alike.
class OrderedSums {
 public:
  OrderedSums(const TrainableParameters& parameters, size_t rules) : rules_(rules) {
    for (size_t r = 0; r < rules; ++r) {
      std::vector<std::vector<double>> sums;
      for (const TrainableParameter& p : parameters) sums.emplace_back(p.tensor.numel(), 0.0);
      sums_.push_back(std::move(sums));
    }
    for (const TrainableParameter& p : parameters) magnitudes_.emplace_back(p.tensor.numel(), 0.0);
  }

  // Sample i's gradients (each × scale) weighted by factors[r * P + p] for rule r.
  void add(int64_t i, std::vector<at::Tensor> grads, double scale, std::vector<double> factors) {
    in_order_.add(i, Entry{std::move(grads), scale, std::move(factors)},
                  [this](const Entry& e) { accumulate(e); });
  }

  // Σᵢ f_{r,i,p} · gᵢ of rule r, parameter p.
  const std::vector<double>& sum(size_t r, size_t p) const { return sums_[r][p]; }
  // Σᵢ |f_{0,i,p} · gᵢ| element-wise: the reference sum's rounding scale.
  const std::vector<double>& magnitude(size_t p) const { return magnitudes_[p]; }

 private:
  struct Entry {
    std::vector<at::Tensor> grads;
    double scale;
    std::vector<double> factors;
  };

  void accumulate(const Entry& e) {
    const size_t params = e.grads.size();
    for (size_t p = 0; p < params; ++p) {
      const at::Tensor g = e.grads[p].detach().to(at::kCPU).contiguous();
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "psg4j_clipped_sum", [&] {
        const scalar_t* v = g.const_data_ptr<scalar_t>();
        const int64_t n = g.numel();
        for (size_t r = 0; r < rules_; ++r) {
          const double w = e.factors[r * params + p] * e.scale;
          double* s = sums_[r][p].data();
          for (int64_t k = 0; k < n; ++k) s[k] += w * static_cast<double>(v[k]);
        }
        const double w = std::abs(e.factors[p] * e.scale);
        double* m = magnitudes_[p].data();
        for (int64_t k = 0; k < n; ++k) m[k] += w * std::abs(static_cast<double>(v[k]));
      });
    }
  }

  size_t rules_;
  std::vector<std::vector<std::vector<double>>> sums_;  // [rule][parameter][element]
  std::vector<std::vector<double>> magnitudes_;
  InSampleOrder<Entry> in_order_;
};

// OrderedSums on a device: the same sums, in sample order, queued on one accumulation
// stream of their own, so the numbers are the same at any worker count there too and nothing is
// read to the host until the pass has ended. A sample's gradients come from its worker's stream:
// the accumulation stream waits for an event recorded there, and record_stream keeps the caching
// allocator from reusing their memory before the accumulation has read it.
class DeviceOrderedSums {
 public:
  DeviceOrderedSums(const TrainableParameters& parameters, size_t rules, const at::Device& device)
      : rules_(rules), device_(device), stream_(c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device)) {
    const at::TensorOptions options = at::TensorOptions().dtype(at::kDouble).device(device);
    sums_.resize(rules);
    for (size_t r = 0; r < rules; ++r) {
      for (const TrainableParameter& p : parameters) sums_[r].push_back(at::zeros({p.tensor.numel()}, options));
    }
    for (const TrainableParameter& p : parameters) magnitudes_.push_back(at::zeros({p.tensor.numel()}, options));
    wait_for(current_stream(), stream_);  // the zeros are queued on the caller's stream
  }

  // As OrderedSums::add, called on a worker with its stream current. The gradients are copied
  // there first: a CUDA graph's gradients are its static buffers, overwritten by its next replay.
  void add(int64_t i, const std::vector<at::Tensor>& grads, double scale, std::vector<double> factors) {
    std::vector<at::Tensor> own;
    {
      c10::NoGradGuard no_grad;
      for (const at::Tensor& g : grads) own.push_back(g.detach().reshape({-1}).to(at::kDouble, false, /*copy=*/true));
    }
    c10::Event ready(device_.type());
    ready.record(current_stream());
    in_order_.add(i, Entry{std::move(own), scale, std::move(factors), std::move(ready)},
                  [this](const Entry& e) { accumulate(e); });
  }

  // After the pass: the caller's stream follows the accumulation, and the sums come to the host.
  void finish() {
    wait_for(stream_, current_stream());
    for (size_t r = 0; r < rules_; ++r) {
      host_sums_.emplace_back();
      for (const at::Tensor& t : sums_[r]) host_sums_.back().push_back(to_vector(t));
    }
    for (const at::Tensor& t : magnitudes_) host_magnitudes_.push_back(to_vector(t));
  }

  const std::vector<double>& sum(size_t r, size_t p) const { return host_sums_[r][p]; }
  const std::vector<double>& magnitude(size_t p) const { return host_magnitudes_[p]; }

 private:
  struct Entry {
    std::vector<at::Tensor> grads;  // flat doubles, made on the worker's stream
    double scale;
    std::vector<double> factors;
    c10::Event ready;
  };

  c10::Stream current_stream() const { return c10::impl::VirtualGuardImpl(device_.type()).getStream(device_); }

  static std::vector<double> to_vector(const at::Tensor& t) {
    const at::Tensor host = t.cpu();
    return std::vector<double>(host.const_data_ptr<double>(), host.const_data_ptr<double>() + host.numel());
  }

  void accumulate(const Entry& e) {
    c10::StreamGuard on_sums(stream_);
    c10::NoGradGuard no_grad;
    e.ready.block(stream_);
    const size_t params = e.grads.size();
    for (size_t p = 0; p < params; ++p) {
      const at::Tensor& g = e.grads[p];
      for (size_t r = 0; r < rules_; ++r) sums_[r][p].add_(g, e.factors[r * params + p] * e.scale);
      magnitudes_[p].add_(g.abs(), std::abs(e.factors[p] * e.scale));
      g.record_stream(stream_);
    }
  }

  size_t rules_;
  at::Device device_;
  c10::Stream stream_;
  std::vector<std::vector<at::Tensor>> sums_;  // [rule][parameter], flat
  std::vector<at::Tensor> magnitudes_;
  std::vector<std::vector<std::vector<double>>> host_sums_;
  std::vector<std::vector<double>> host_magnitudes_;
  InSampleOrder<Entry> in_order_;
};

// The tolerance of an element of a clipped sum: |c - r| <= atol + rtol·A, A = Σᵢ |factorᵢ·gᵢ|.
// A sum of B terms, each correct to rtol (the per-sample tolerance, which a factor from a norm
// correct to rtol keeps), is correct to rtol·Σ|terms| and no better: where the terms cancel, |r|
// is far below the error the terms themselves carry, so rtol·|r| would fail correct sums.
ClippedSumStats compare_sum(const at::Tensor& candidate, const std::vector<double>& reference,
                            const std::vector<double>& magnitude, const Tolerance& tolerance) {
  const at::Tensor c = candidate.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* cv = c.const_data_ptr<double>();
  ClippedSumStats s;
  double worst = -1;
  for (size_t k = 0; k < reference.size(); ++k) {
    const double allowed = tolerance.atol + tolerance.rtol * magnitude[k];
    const bool c_finite = std::isfinite(cv[k]), r_finite = std::isfinite(reference[k]);
    s.candidate_non_finite += !c_finite;
    s.reference_non_finite += !r_finite;
    const double diff = std::abs(cv[k] - reference[k]);
    const bool bad = !(diff <= allowed);
    s.bad += bad;
    const double severity = (c_finite && r_finite) ? diff / allowed : std::numeric_limits<double>::infinity();
    if (c_finite && r_finite) {
      s.max_abs_err = std::max(s.max_abs_err, diff);
      s.max_rel_err = std::max(s.max_rel_err, diff / std::max(magnitude[k], tolerance.atol));
      s.max_tol_ratio = std::max(s.max_tol_ratio, diff / allowed);
    }
    if (severity > worst) {
      worst = severity;
      s.worst_element = static_cast<int64_t>(k);
      s.worst_candidate = cv[k];
      s.worst_reference = reference[k];
    }
  }
  return s;
}

// Whether candidate ≈ sum · scale within atol + rtol·bound·scale·A, bound ≥ max |h/f| over samples
// (so bound·A ≥ Σᵢ |hᵢ·gᵢ|, the rounding scale of the suspect's own sum).
bool reproduces(const at::Tensor& candidate, const std::vector<double>& sum, const std::vector<double>& magnitude,
                double scale, double bound, const Tolerance& tolerance) {
  const at::Tensor c = candidate.detach().to(at::kCPU, at::kDouble).contiguous();
  const double* cv = c.const_data_ptr<double>();
  for (size_t k = 0; k < sum.size(); ++k) {
    const double allowed = tolerance.atol + tolerance.rtol * bound * scale * magnitude[k];
    if (!(std::abs(cv[k] - sum[k] * scale) <= allowed)) return false;
  }
  return true;
}

}  // namespace

namespace {

// The verdicts once the sums are in (host or device sums alike): each parameter's sum against
// the candidate's, then which known clipping bug, if any, reproduces the failing ones.
template <typename Sums>
void finish_clipped_sum(ClippedSumComparison& out, const PlannedCandidate& planned, const std::vector<double>& all_factors,
                        const std::vector<const Suspect*>& suspected, const Tolerance& tolerance, const Sums& sums) {
  const size_t params = out.parameters.size();
  const int64_t batch_size = out.batch_size;
  out.factors = at::zeros({static_cast<int64_t>(params), batch_size}, at::kDouble);
  std::copy(all_factors.begin(), all_factors.begin() + params * batch_size, out.factors.mutable_data_ptr<double>());
  std::vector<size_t> failing;
  for (size_t p = 0; p < params; ++p) {
    out.params.push_back(compare_sum(planned.tensors[p], sums.sum(0, p), sums.magnitude(p), tolerance));
    if (out.params.back().bad > 0) failing.push_back(p);
  }
  auto factor = [&](size_t r, size_t p, int64_t i) { return all_factors[(r * params + p) * batch_size + i]; };
  for (size_t s = 0; s < suspected.size(); ++s) {
    const size_t r = s + 1;
    ClippingMatch match{suspected[s]->kind, suspected[s]->explanation, {}, {}};
    std::vector<bool> changed(batch_size, false);
    for (size_t p : failing) {
      double bound = 0;
      for (int64_t i = 0; i < batch_size; ++i) {
        const double f = factor(0, p, i);  // > 0 for a finite norm
        bound = f > 0 ? std::max(bound, std::abs(factor(r, p, i)) / f) : std::numeric_limits<double>::infinity();
      }
      const double scale = suspected[s]->divided_by_batch ? 1.0 / double(batch_size) : 1.0;
      if (!reproduces(planned.tensors[p], sums.sum(r, p), sums.magnitude(p), scale, std::max(bound, 1.0), tolerance)) {
        continue;
      }
      match.params.push_back(p);
      for (int64_t i = 0; i < batch_size; ++i) {
        changed[i] = changed[i] || std::abs(factor(r, p, i) - factor(0, p, i)) > tolerance.rtol * factor(0, p, i);
      }
    }
    if (match.params.empty()) continue;
    for (int64_t i = 0; i < batch_size; ++i) {
      if (changed[i]) match.samples.push_back(i);
    }
    out.matches.push_back(std::move(match));
  }
}

}  // namespace

ClippedSumComparison compare_clipped_sum(const Problem& problem, const NamedTensors& candidate,
                                         const Clipping& clipping, const Tolerance& tolerance, const Spread& spread) {
  const int64_t batch_size = problem.batch.validate();
  ClippedSumComparison out;
  out.batch_size = batch_size;
  out.parameters = problem.model.parameters();
  const size_t params = out.parameters.size();
  out.thresholds = parameter_thresholds(clipping, params);
  const PlannedCandidate planned = plan_candidate(out.parameters, batch_size, candidate);
  out.names = planned.names;

  ClipContext ctx{clipping.mode, out.thresholds, 0.0,
                  clipping.mode == ClippingMode::PerLayer && clipping.thresholds.size() == 1, problem.reduction,
                  batch_size};
  if (clipping.mode == ClippingMode::Flat) {
    ctx.total = clipping.thresholds[0];
  } else {
    double squares = 0;
    for (double t : out.thresholds) squares += t * t;
    ctx.total = ctx.split ? clipping.thresholds[0] : std::sqrt(squares);
  }
  std::vector<FactorRule> rules{ctx.reference()};
  std::vector<const Suspect*> suspected;
  for (const Suspect& s : suspects()) {
    if (s.applies(ctx)) {
      rules.push_back(s.rule(ctx));
      suspected.push_back(&s);
    }
  }

  NamedTensors leaves;
  for (const TrainableParameter& p : out.parameters) leaves.emplace_back(p.name, p.tensor);
  const size_t nrules = rules.size();
  // Every rule's factors of every sample, [rule][parameter][sample]: small (no |θ| in it).
  std::vector<double> all_factors(nrules * params * batch_size, 0.0);
  out.norms = at::zeros({static_cast<int64_t>(params), batch_size}, at::kDouble);
  out.whole = at::zeros({batch_size}, at::kDouble);
  double* norms_out = out.norms.mutable_data_ptr<double>();
  double* whole_out = out.whole.mutable_data_ptr<double>();
  if (params > 0 && !out.parameters.front().tensor.device().is_cpu()) {
    // On a device: the norms first (one pass, one read), the factors on the host from
    // them, then the factor-weighted sums in a second pass, queued on the device: no host read per
    // sample, at the cost of a second reference pass.
    const SampleNorms norms = reference_norms(problem, spread);
    const double* n = norms.per_parameter.const_data_ptr<double>();  // host tensors
    const double* whole_of = norms.whole.const_data_ptr<double>();
    std::vector<std::vector<double>> factors_of(batch_size, std::vector<double>(nrules * params));
    for (int64_t i = 0; i < batch_size; ++i) {
      std::vector<double> sample_norms(params);
      for (size_t p = 0; p < params; ++p) sample_norms[p] = n[p * batch_size + i];
      for (size_t r = 0; r < nrules; ++r) rules[r].factors(sample_norms, whole_of[i], factors_of[i].data() + r * params);
      for (size_t p = 0; p < params; ++p) {
        for (size_t r = 0; r < nrules; ++r) all_factors[(r * params + p) * batch_size + i] = factors_of[i][r * params + p];
      }
    }
    out.norms = norms.per_parameter;
    out.whole = norms.whole;
    DeviceOrderedSums sums(out.parameters, nrules, out.parameters.front().tensor.device());
    for_each_reference_gradient(problem.model, problem.batch, problem.loss, {problem.reduction}, leaves, spread,
                                [&](int64_t i, const ReferenceGradient& g) { sums.add(i, g.grads, g.scale, factors_of[i]); });
    sums.finish();
    finish_clipped_sum(out, planned, all_factors, suspected, tolerance, sums);
    return out;
  }
  OrderedSums sums(out.parameters, nrules);
  for_each_reference_gradient(problem.model, problem.batch, problem.loss, {problem.reduction}, leaves, spread,
                              [&](int64_t i, const ReferenceGradient& g) {
    std::vector<double> norms(params);
    double squares = 0;
    for (size_t p = 0; p < params; ++p) {
      norms[p] = std::abs(g.scale) * l2_norm(g.grads[p]);
      squares += norms[p] * norms[p];
    }
    const double whole = std::sqrt(squares);
    std::vector<double> factors(nrules * params);
    for (size_t r = 0; r < nrules; ++r) rules[r].factors(norms, whole, factors.data() + r * params);
    for (size_t p = 0; p < params; ++p) {
      norms_out[p * batch_size + i] = norms[p];
      for (size_t r = 0; r < nrules; ++r) all_factors[(r * params + p) * batch_size + i] = factors[r * params + p];
    }
    whole_out[i] = whole;
    sums.add(i, g.grads, g.scale, std::move(factors));
  });

  finish_clipped_sum(out, planned, all_factors, suspected, tolerance, sums);
  return out;
}

at::Tensor clipped_sum_stats_tensor(const ClippedSumComparison& comparison) {
  const int64_t params = static_cast<int64_t>(comparison.params.size());
  at::Tensor out = at::zeros({params, ClippedSumStats::kFields}, at::kDouble);
  double* v = out.mutable_data_ptr<double>();
  for (int64_t p = 0; p < params; ++p) {
    const ClippedSumStats& s = comparison.params[p];
    double* row = v + p * ClippedSumStats::kFields;
    row[0] = s.max_abs_err;
    row[1] = s.max_rel_err;
    row[2] = s.max_tol_ratio;
    row[3] = static_cast<double>(s.bad);
    row[4] = static_cast<double>(s.candidate_non_finite);
    row[5] = static_cast<double>(s.reference_non_finite);
    row[6] = static_cast<double>(s.worst_element);
    row[7] = s.worst_candidate;
    row[8] = s.worst_reference;
  }
  return out;
}

}  // namespace psg4j

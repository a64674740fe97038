#include "psg4j/rounding.h"

#include "psg4j/error.h"
#include "psg4j/model_variants.h"

#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace psg4j {

// Note [Rounding level]
// ~~~~~~~~~~~~~~~~~~~~~
// Element-wise allclose with fixed atol / rtol cannot tell a float32 candidate's rounding from a
// bug once a gradient element is a long sum: on a GPT-style decoder (V = 2,000, T = 32, D = 128,
// the l1 loss over 64 × 2,000 × 32 outputs) each element of a weight gradient sums tens of
// thousands of float32 terms, and the vmap engine's correct gradients fail allclose against the
// float32 reference in 20 of 28 parameters. Neither is wrong: both lie 1e-4..1e-3 from the same
// samples computed in double.
//
// So the default rule widens each element's tolerance by c·ρ, where ρ is the rounding level of
// the reference itself for that parameter and sample: |c - r| <= atol + rtol·|r| + c·ρ. ρ is
// measured on the check's own work, not assumed: for kRoundingSamples samples spread over the
// batch, the reference is computed as usual and again in double (the model cast whole, frozen
// parameters and buffers included), and for each parameter λ = max|r - r_double| / rms(r) per
// sample; λ's median over those samples, times the rms of sample i's own reference, is ρ for
// sample i. Why this shape:
//  - Scaled per sample by its reference's rms: a sample's rounding grows with its gradient's size,
//    and on the GPT model λ varies 2-3× over the batch (max / median over 64 samples: 1.6-3.1).
//  - The median, not the largest: an l1 loss (or a ReLU) has kinks, and a float forward puts an
//    output that is within rounding of zero on the other side of it than double does: the sample's
//    float gradient then jumps (one sample in 128 on the GPT model, at 5,000-11,000 times its
//    usual λ). A candidate computed in float takes the same side as the float reference (their
//    forwards round alike), so the comparison is against the float reference, and the measurement
//    must not let one such sample inflate ρ for the whole batch.
//  - The reference stays in the model's precision: a double reference would put those jumps
//    between it and every correct float candidate (measured: such a sample then needs 4,000-8,000 ρ),
//    and computing every sample twice costs 2-3 references; four samples cost 4 float and 4 double
//    sample passes more, and one forward that finds out whether the model runs in double.
//  - c = kRoundingMultiple = 4: over the correct candidates measured (vmap and microbatch engines
//    on the GPT model, 4 seeds, l1 and cross_entropy, both reductions, B = 64; ResNet-18 with
//    GroupNorm, B = 16; the suite at B = 32 and 256; the fixtures' torch.func and Opacus
//    candidates), a sample's largest |c - r| is at most 3.3 ρ on the GPT and ResNet models (median
//    0.6-1.2 ρ, 99th percentile 1.3-2.1 ρ) and 4.4 ρ where atol and rtol dominate; under the rule
//    the worst of them uses 0.26 of its tolerance. An element off by 10 ρ fails wherever 6 ρ
//    exceeds atol + rtol·|r| plus the candidate's own rounding there.
// A model that cannot run in double (it makes float tensors of its own) is measured against its
// reference with every trainable parameter moved by one ulp instead: the difference estimates the
// same rounding (per parameter 0.5-1.9 times the double-measured λ, median 1.0-1.4, on the GPT and
// ResNet models), and ρ means the same thing. So does a model in double, against its own moves. A
// model whose parameters cannot be replaced at all is not measured: its rule is allclose's.

std::string yardstick_name(RoundingYardstick yardstick) {
  switch (yardstick) {
    case RoundingYardstick::Double: return "double";
    case RoundingYardstick::PerturbedParameters: return "perturbed parameters";
    case RoundingYardstick::None: return "";
  }
  return "";
}

std::vector<int64_t> rounding_samples(int64_t batch_size) {
  const int64_t count = std::min(batch_size, kRoundingSamples);
  std::vector<int64_t> samples;
  for (int64_t j = 0; j < count; ++j) samples.push_back(j * batch_size / count);
  return samples;
}

namespace {

// The yardstick `model` is measured against, and the batch it runs.
struct Yardstick {
  RoundingYardstick kind = RoundingYardstick::None;
  std::shared_ptr<Model> model;
  Batch batch;
};

// The model in double where it runs in double (and is not in double already), else with its
// parameters moved by one ulp where psg4j can swap them; none for a model whose parameters psg4j
// cannot replace (a C++-frontend layer of a type the registry does not know): not measured.
Yardstick yardstick_of(const Model& model, const Batch& batch, at::ScalarType precision, int64_t first_sample) {
  if (precision != at::kDouble) {
    try {
      std::shared_ptr<Model> cast = cast_model(model, at::kDouble);
      Batch cast_inputs = cast_batch(batch, at::kDouble);
      if (runs_in(*cast, cast_inputs, first_sample, at::kDouble)) return {RoundingYardstick::Double, cast, cast_inputs};
    } catch (const std::exception&) {
      // Its tensors cannot be replaced: measured by perturbation below.
    }
  }
  std::shared_ptr<Model> perturbed = perturbed_model(model, kPerturbationSeed);
  if (runs_in(*perturbed, batch, first_sample, precision)) return {RoundingYardstick::PerturbedParameters, perturbed, batch};
  return {};
}

// `leaves`' counterparts in `model`, by name (or alias).
NamedTensors leaves_by_name(const Model& model, const NamedTensors& leaves) {
  std::map<std::string, at::Tensor> named;
  for (const TrainableParameter& p : model.parameters()) {
    named[p.name] = p.tensor;
    for (const std::string& alias : p.aliases) named[alias] = p.tensor;
  }
  NamedTensors out;
  for (const auto& [name, tensor] : leaves) {
    auto found = named.find(name);
    if (found == named.end()) bad_input("the rounding yardstick of " + model.describe() + " has no parameter '" + name + "'");
    out.emplace_back(name, found->second);
  }
  return out;
}

// max |a·sa − b·sb| and rms(a·sa) over the finite elements, in double.
struct Difference {
  double max_abs = 0;
  double rms = 0;
};

template <typename T>
Difference difference_on_host(const T* a, double sa, const double* b, double sb, int64_t n) {
  double largest = 0, squares = 0;
#pragma omp simd reduction(max : largest) reduction(+ : squares)
  for (int64_t k = 0; k < n; ++k) {
    const double x = static_cast<double>(a[k]) * sa;
    const double d = std::abs(x - b[k] * sb);
    const bool finite = (x - x) == 0 && d - d == 0;
    largest = finite && d > largest ? d : largest;
    squares += finite ? x * x : 0.0;
  }
  return {largest, n > 0 ? std::sqrt(squares / static_cast<double>(n)) : 0.0};
}

// One pass over host memory where it can (no temporaries of |θ| doubles: their first-touch page
// faults cost more than the arithmetic), ATen's ops elsewhere.
Difference difference_of(const at::Tensor& a, double sa, const at::Tensor& b, double sb) {
  c10::NoGradGuard no_grad;
  if (a.device().is_cpu() && b.device().is_cpu()) {
    const at::Tensor x = a.scalar_type() == at::kFloat ? a.detach().contiguous() : a.detach().to(at::kDouble).contiguous();
    const at::Tensor y = b.detach().to(at::kDouble).contiguous();
    return x.scalar_type() == at::kFloat
               ? difference_on_host(x.const_data_ptr<float>(), sa, y.const_data_ptr<double>(), sb, x.numel())
               : difference_on_host(x.const_data_ptr<double>(), sa, y.const_data_ptr<double>(), sb, x.numel());
  }
  const at::Tensor x = a.detach().to(at::kDouble) * sa;
  const at::Tensor y = b.detach().to(x.device(), at::kDouble) * sb;
  const at::Tensor finite = x.isfinite().logical_and(y.isfinite());
  return {(x - y).abs().masked_fill(finite.logical_not(), 0).max().item<double>(),
          x.masked_fill(finite.logical_not(), 0).square().mean().sqrt().item<double>()};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

RoundingLevels measure_rounding(const Model& model, const Batch& batch, const Loss& loss,
                                const std::vector<Reduction>& reductions, const NamedTensors& leaves,
                                const Spread& spread) {
  RoundingLevels out;
  const int64_t batch_size = batch.validate();
  if (leaves.empty() || batch_size == 0) return out;
  out.samples = rounding_samples(batch_size);
  const Yardstick yardstick = yardstick_of(model, batch, leaves.front().second.scalar_type(), out.samples.front());
  if (yardstick.kind == RoundingYardstick::None) {
    out.samples.clear();
    return out;
  }
  out.yardstick = yardstick.kind;
  const NamedTensors other_leaves = leaves_by_name(*yardstick.model, leaves);

  std::map<int64_t, size_t> slot_of;
  for (size_t s = 0; s < out.samples.size(); ++s) slot_of[out.samples[s]] = s;
  // ratios[reduction][leaf][slot]; each (slot) is written by the one worker that took its sample.
  const double none = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<std::vector<double>>> ratios(
      reductions.size(), std::vector<std::vector<double>>(leaves.size(), std::vector<double>(out.samples.size(), none)));
  for_each_reference_pair(ReferenceSetup{model, batch, leaves},
                          ReferenceSetup{*yardstick.model, yardstick.batch, other_leaves}, loss, reductions, out.samples,
                          spread, [&](int64_t i, const ReferenceGradient& own, const ReferenceGradient& other) {
    for (size_t l = 0; l < leaves.size(); ++l) {
      if (own.grads[l].numel() == 0) continue;
      const Difference d = difference_of(own.grads[l], own.scale, other.grads[l], other.scale);
      if (d.rms > 0) ratios[own.reduction][l][slot_of.at(i)] = d.max_abs / d.rms;
    }
  });

  for (const auto& per_reduction : ratios) {
    std::vector<double> levels;
    for (const std::vector<double>& per_leaf : per_reduction) {
      std::vector<double> measured;
      for (double v : per_leaf) {
        if (!std::isnan(v)) measured.push_back(v);
      }
      levels.push_back(measured.empty() ? none : median(measured));
    }
    double largest = 0;
    for (double v : levels) {
      if (!std::isnan(v)) largest = std::max(largest, v);
    }
    for (double& v : levels) {
      if (std::isnan(v)) v = largest;  // no rounding sample reaches this leaf
    }
    out.per_rms.push_back(std::move(levels));
  }
  return out;
}

}  // namespace psg4j

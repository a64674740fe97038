// The clipped sum a DP optimizer adds noise to, from the microbatch reference, compared
// with a candidate's: Σᵢ gᵢ · min(1, C / (‖gᵢ‖ + 1e-6)) for flat clipping (Opacus's
// DPOptimizer.clip_and_accumulate, its exact formula), and per parameter p with its own threshold
// C_p for per-layer clipping (DPPerLayerOptimizer). No noise, no division by the batch size: what
// Opacus keeps in p.summed_grad.
#pragma once

#include "psg4j/compare.h"

#include <string>
#include <vector>

namespace psg4j {

enum class ClippingMode : int32_t { Flat = 0, PerLayer = 1 };

// Opacus's 1e-6 in C / (‖g‖ + 1e-6): for norms near 1e-6·C/rtol it moves the factor by more than rtol.
inline constexpr double kClipEpsilon = 1e-6;

struct Clipping {
  ClippingMode mode = ClippingMode::Flat;
  // Flat: one threshold C. Per-layer: one per trainable parameter (model order, a tied one once),
  // or one C that is split as C / sqrt(P) each, as Opacus's examples do (thresholds then hold C).
  std::vector<double> thresholds;
};

// Opacus's clip factor min(1, threshold / (norm + 1e-6)).
double clip_factor(double threshold, double norm);

// The thresholds `clipping` gives each of `parameter_count` parameters (flat: C for every one).
// Throws BadInput for a count that fits neither one C nor one per parameter, and for thresholds
// that are not finite and positive.
std::vector<double> parameter_thresholds(const Clipping& clipping, size_t parameter_count);

// One parameter's verdict: the sum's elements against the reference's, |c - r| <= atol + rtol·A
// with A = Σᵢ |factorᵢ · gᵢ| element-wise (see clipped_sum.cpp for why).
struct ClippedSumStats {
  double max_abs_err = 0;
  double max_rel_err = 0;    // max |c - r| / max(A, atol)
  double max_tol_ratio = 0;  // max |c - r| / (atol + rtol·A)
  int64_t bad = 0;           // elements outside tolerance, non-finite ones included
  int64_t candidate_non_finite = 0;
  int64_t reference_non_finite = 0;
  int64_t worst_element = -1;  // flat index of the element furthest outside tolerance
  double worst_candidate = 0;
  double worst_reference = 0;

  static constexpr int kFields = 9;
};

// A known clipping bug that reproduces the candidate where the reference does not.
struct ClippingMatch {
  std::string kind;
  std::string explanation;
  std::vector<size_t> params;    // the failing parameters it reproduces
  std::vector<int64_t> samples;  // the samples whose factor it changes there
};

struct ClippedSumComparison {
  int64_t batch_size = 0;
  TrainableParameters parameters;  // model order
  std::vector<std::string> names;  // as the candidate names each parameter
  std::vector<ClippedSumStats> params;
  std::vector<double> thresholds;  // per parameter (flat: C for each)
  at::Tensor norms;                // [P, B] double: ‖g_{i,p}‖
  at::Tensor whole;                // [B] double: ‖g_i‖
  at::Tensor factors;              // [P, B] double: the factor applied to each parameter of each sample
  std::vector<ClippingMatch> matches;
};

// Streams the reference (O(|θ|) per worker plus a few |θ| accumulators in double), accumulating
// the factor-weighted gradients in sample order whatever the worker count, so the numbers are the
// same at any count. `candidate`: {parameter name (or an alias): Tensor[*shape]}; a missing,
// extra or misshapen entry is BadInput naming it.
ClippedSumComparison compare_clipped_sum(const Problem& problem, const NamedTensors& candidate,
                                         const Clipping& clipping, const Tolerance& tolerance,
                                         const Spread& spread = {});

// The statistics as one tensor [P, ClippedSumStats::kFields] of doubles (declaration order).
at::Tensor clipped_sum_stats_tensor(const ClippedSumComparison& comparison);

}  // namespace psg4j

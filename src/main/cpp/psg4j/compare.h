// Comparison of candidate per-sample gradients with the reference, element-wise: by default
// |c - r| <= atol + rtol·|r| + c·ρ, ρ the reference's own rounding level (rounding.h); exactly
// torch.allclose's |c - r| <= atol + rtol·|r| under the allclose rule. NaN or Inf never matches.
#pragma once

#include "psg4j/fingerprints.h"
#include "psg4j/reference.h"
#include "psg4j/rounding.h"

#include <limits>
#include <optional>

namespace psg4j {

// Which element-wise criterion a comparison applies.
enum class ToleranceRule : int32_t {
  Rounding = 0,  // allclose widened by kRoundingMultiple times the measured rounding level
  Allclose = 1,  // torch.allclose (Opacus's check), the reference in the model's precision
};

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-4;
  ToleranceRule rule = ToleranceRule::Rounding;
};

enum class ParamStatus : int32_t {
  Compared = 0,  // names and shapes agree; values were compared
  Missing = 1,   // the model has it, the candidate does not
  Extra = 2,     // the candidate has it, the model does not
  Shape = 3,     // the candidate's tensor is not [B, *parameter shape]
};

// One parameter of one sample, over its elements.
struct SampleStats {
  double max_abs_err = 0;    // max |c - r| over finite elements
  double max_rel_err = 0;    // max |c - r| / max(|r|, atol)
  double max_tol_ratio = 0;  // max |c - r| / (its tolerance): > 1 means outside tolerance
  int64_t bad = 0;           // elements outside tolerance, non-finite ones included
  int64_t candidate_non_finite = 0;
  int64_t reference_non_finite = 0;
  // ρ: the reference's rounding level for this sample (λ·reference_rms), 0 where not measured.
  double rounding_level = 0;
  double reference_rms = 0;  // sqrt(mean r²) over finite elements
  // For a sample with an element outside tolerance (0 elsewhere): max (|c - r| - atol - rtol·|r|)
  // over finite elements, the least widening of allclose that passes them all, and max |r|.
  double excess = 0;
  double reference_max = 0;

  static constexpr int kFields = 10;
};

// Where a sketch put a parameter (sketch.h): pass is decided by the sketch; the others by the
// reference, which fills `samples`.
enum class SketchZone : int32_t { Pass = 0, Undecided = 1, Fail = 2 };

struct SketchVerdict {
  SketchZone zone = SketchZone::Pass;
  // The largest residual over elements and projections, in units of its pass threshold.
  double residual_ratio = 0;
};

struct ParamComparison {
  std::string name;                   // as the candidate names it (the first name when missing)
  std::vector<std::string> aliases;   // the parameter's other names, when it is tied
  ParamStatus status = ParamStatus::Compared;
  std::vector<int64_t> expected_shape;   // [B, *shape]; empty for Extra
  std::vector<int64_t> candidate_shape;  // empty for Missing
  std::vector<SampleStats> samples;      // B entries when Compared (none when a sketch passed it)
  bool rounding_measured = false;        // whether samples[i].rounding_level holds the sample's ρ
  std::optional<SketchVerdict> sketch;   // sketch mode only
  // Value diagnoses: set wherever `samples` is (see fingerprints.h).
  std::optional<Fingerprints> fingerprints;
};

struct Comparison {
  int64_t batch_size = 0;
  // The precision the reference ran in ("float", "double", ...: the model's), and how its
  // rounding level was measured (none: the allclose rule found nothing to explain).
  std::string reference_precision;
  RoundingYardstick rounding_yardstick = RoundingYardstick::None;
  std::vector<int64_t> rounding_samples;
  // How the reference ran, for the report: "cpu workers", "cuda streams",
  // "cuda graphs", or "cuda streams (graph capture failed: <cause>)"; empty where no reference ran.
  std::string reference_route;
  // Model order (a tied parameter once per name the candidate gives it), then the candidate's
  // extra names.
  std::vector<ParamComparison> params;
};

// A Compared entry of a Comparison: the candidate tensor and the parameter (index in
// Model::parameters()) whose reference it is compared with.
struct ComparedCandidate {
  size_t entry;
  size_t parameter;
  at::Tensor candidate;
};

// Lays out `comparison` (names, statuses, shapes) for `candidate` and returns the entries whose
// values are to be compared. Throws BadInput for unusable candidate tensors.
std::vector<ComparedCandidate> plan_comparison(Comparison& comparison, const TrainableParameters& parameters,
                                               int64_t batch_size, const NamedTensors& candidate);

// Streams the reference of the parameters that which[k] needs (those only: autograd skips the
// others) under reductions[k] into the per-sample statistics of those entries of
// *comparisons[k], one pass for every reduction, measuring their rounding level first under the
// rounding rule (and afterwards, for the parameters that failed, under the allclose rule).
void compare_exactly(const Model& model, const Batch& batch, const Loss& loss, const std::vector<Reduction>& reductions,
                     const TrainableParameters& parameters, const std::vector<std::vector<ComparedCandidate>>& which,
                     const Tolerance& tolerance, const std::vector<Comparison*>& comparisons,
                     const Spread& spread = {});

// Compares with reference × reference_scale (what a sum gradient is scaled by to stand in for
// the mean one; 1 otherwise). `rounding_per_rms` is the parameter's λ (rounding.h; NaN where not
// measured): the sample's rounding level is λ·rms(reference), and the rounding rule widens each
// element's tolerance by kRoundingMultiple times it.
SampleStats compare_sample(const at::Tensor& candidate, const at::Tensor& reference,
                           const Tolerance& tolerance, double reference_scale = 1.0,
                           double rounding_per_rms = std::numeric_limits<double>::quiet_NaN());

// Streams the microbatch reference into the comparison: memory is the candidate's plus O(|θ|)
// per worker.
Comparison compare_with_reference(const Problem& problem, const NamedTensors& candidate,
                                  const Tolerance& tolerance, const Spread& spread = {});

// The candidate of one reduction.
struct ReductionCandidate {
  Reduction reduction;
  NamedTensors candidate;
};

// One Comparison per candidate, in their order, from one streaming pass of the reference where
// that is exact: for the built-in losses one sum backward per sample serves both reductions (see
// for_each_reference_gradient); a custom loss takes one backward per reduction.
std::vector<Comparison> compare_with_reference(const Model& model, const Batch& batch, const Loss& loss,
                                               const std::vector<ReductionCandidate>& candidates,
                                               const Tolerance& tolerance, const Spread& spread = {});

// A comparison's statistics as one tensor [params, B, SampleStats::kFields] of doubles (in
// SampleStats order), zeros for the parameters not compared: read in one transfer.
at::Tensor stats_tensor(const Comparison& comparison);

}  // namespace psg4j

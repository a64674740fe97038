// Comparison of candidate per-sample gradients with the reference, element-wise like
// torch.allclose: |c - r| <= atol + rtol * |r|; NaN or Inf is never a match.
#pragma once

#include "psg4j/fingerprints.h"
#include "psg4j/reference.h"

#include <optional>

namespace psg4j {

struct Tolerance {
  double atol = 1e-5;
  double rtol = 1e-4;
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
  double max_tol_ratio = 0;  // max |c - r| / (atol + rtol |r|): > 1 means outside tolerance
  int64_t bad = 0;           // elements outside tolerance, non-finite ones included
  int64_t candidate_non_finite = 0;
  int64_t reference_non_finite = 0;

  static constexpr int kFields = 6;
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
  std::optional<SketchVerdict> sketch;   // sketch mode only
  // Value diagnoses (issue 10): set wherever `samples` is (see fingerprints.h).
  std::optional<Fingerprints> fingerprints;
};

struct Comparison {
  int64_t batch_size = 0;
  // How the reference ran (issue 11), for the report: "cpu workers", "cuda streams",
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

// Streams the reference of the parameters `which` needs (those only: autograd skips the others)
// into their entries' per-sample statistics.
void compare_exactly(const Problem& problem, const TrainableParameters& parameters,
                     const std::vector<ComparedCandidate>& which, const Tolerance& tolerance,
                     Comparison& comparison, const Spread& spread = {});

// Compares with reference × reference_scale (what a sum gradient is scaled by to stand in for
// the mean one; 1 otherwise).
SampleStats compare_sample(const at::Tensor& candidate, const at::Tensor& reference,
                           const Tolerance& tolerance, double reference_scale = 1.0);

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

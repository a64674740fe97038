// Sketch verification (DESIGN §1, "Sketch mode"): Freivalds' check applied to per-sample
// gradients. For K random weight vectors w, one batched forward and K backwards (in double where
// the model runs in double) give ∇θ Σᵢ wᵢ·Lᵢ = Σᵢ wᵢ·gᵢ (Lᵢ: sample i's loss as the reference takes
// it, a one-sample batch with the same reduction), compared element by element with Σᵢ wᵢ·Gᵢ
// from the candidate (one read, accumulated in double).
//
// Every element e of every projection falls in one of three zones, with T_e = atol + rtol·rmsᵢ|Gᵢₑ|
// (the tolerance of a typical sample at that element) and s the parameter's rounding level (the
// median of residual / (min|w|·T_e) over its elements that a sample's gradient reaches, or over an
// evenly spaced sample of 65,536 of them for a larger parameter: Note [Sketch zones in one pass]):
//   pass:      |Σ wG − Σ wg| <= P = min|w|·max(½·atol, T_e·min(ρ, κ·s)): at the parameter's own
//              rounding level (κ = kSketchNoiseMultiplier times it), and never above ρ typical
//              tolerances (ρ = kSketchPassFraction);
//   fail:      the residual exceeds F = max|w|·Σᵢ(atol + rtol'(|Gᵢₑ| + atol)) + P, more than allclose
//              could allow in aggregate (rtol' = rtol / (1 - rtol)): exact mode fails too;
//   undecided: in between.
// A parameter with any element outside the pass zone is decided exactly (the microbatch reference
// on that parameter only), which also localizes the failing samples; the others pass at sketch
// cost, with no per-sample statistics. So a sketch gives exact mode's verdict except where a wrong
// element hides in the pass zone: for sample i off by e at an element, wᵢ·e = ±(1 + U)·e spreads
// over an interval of length 2|e| and the pass window has width 2P, so each projection lets it
// through with probability at most P / |e|, independently: (P / |e|)^K for the check. In double P
// is a few rounding levels; projected in float first (SketchPrecision::FloatFirst, Note [Float first]
// in sketch.cpp) a parameter may pass with P up to ρ·min|w|·T_e, so an element wrong by M typical
// tolerances escapes with probability up to (min|w| / M)^K there (min|w| ≈ 1 + 1/B).
#pragma once

#include "psg4j/compare.h"

#include <cstdint>

namespace psg4j {

// ρ: the most the pass threshold may be, in units of min|w|·T_e. Clean candidates of the suite
// leave at most ~0.3 T_e at B = 256 with the double reference (the float one leaves up to ~3 T_e,
// which then goes to the reference), so ρ = 1 keeps them at sketch cost with a 3× margin.
constexpr double kSketchPassFraction = 1.0;
// κ: the pass threshold over the parameter's median residual; a clean parameter's largest
// residual is at most ~20 times its median on the suite.
constexpr double kSketchNoiseMultiplier = 32.0;
constexpr int64_t kMaxSketchProjections = 64;

// The precision of the reference's projections for a model that runs in float (Note [Float
// first], sketch.cpp). Mapped across the bridge by value.
enum class SketchPrecision : int32_t {
  Double = 0,      // in double, where the model can run in double
  FloatFirst = 1,  // in float; in double only what float leaves undecided
};

struct SketchOptions {
  int64_t projections = 2;  // K, in [1, kMaxSketchProjections]
  uint64_t seed = 0;        // of the weights; the report records it
  SketchPrecision precision = SketchPrecision::Double;
};

// What a sketch spent.
struct SketchCost {
  int64_t forwards = 0;
  int64_t backwards = 0;
  int64_t exact_params = 0;  // parameter comparisons decided by the reference instead
  bool float_first = false;  // the projections ran in float first
  bool in_double = false;    // projections (all, or the ones a float pass left) ran in double
  int64_t double_params = 0; // parameter comparisons the float pass left to double projections
};

struct SketchComparisons {
  std::vector<Comparison> comparisons;  // one per candidate given, in that order
  SketchCost cost;
};

// Sketch-compares the candidates of each reduction given (at most one per reduction). The model
// must be batch-independent and deterministic (the probes' job): the batched forward's per-sample
// losses stand in for the one-sample batches. Built-in losses share one forward and one set of
// backwards between the reductions (mean is sum rescaled per sample); a custom loss is vmapped
// over the samples, and refused in one line where it cannot be.
SketchComparisons sketch_compare(const Model& model, const Batch& batch, const Loss& loss,
                                 const std::vector<std::pair<Reduction, NamedTensors>>& candidates,
                                 const Tolerance& tolerance, const SketchOptions& options);

}  // namespace psg4j

// Black-box probes of a model on a real batch (issue "Diagnostics"): are the inputs and the
// output finite, does the same forward give the same output twice, and does sample i's output
// depend on other samples (batch mixing)? Batch independence is checked exhaustively, every
// sample and every pair j -> i, at a cost that does not grow with the number of samples reported:
//   gradient route (leak_detection.h): 2⌈log₂B⌉ batched input-VJPs, exact;
//   value route (run_alone.h): every sample alone, one vmapped forward (or B one-sample forwards);
// the flagged samples' sources are then named with one VJP each (at most probe_samples of them);
// where the partition passes do not decode the pairs (dense mixing), 2⌈log₂B⌉ + 1 more backward
// passes on the target side find every affected sample; localization.h says where mixing starts.
#pragma once

#include "psg4j/batch.h"
#include "psg4j/model.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace psg4j {

// The most samples a report names sources for (one VJP each).
constexpr int64_t kMaxProbeSamples = 1024;

struct ProbeOptions {
  int64_t probe_samples = 8;  // bound of the report: flagged samples whose sources are named
  double tolerance = 0.0;     // gradient route: relative to the largest input gradient of a VJP; 0: exact
  uint64_t seed = 0;          // of the random output weights
};

// What the probe spent: batched forwards (the gradient route's, the no-grad one it is compared
// with for determinism), input-VJPs, and forwards of samples alone.
struct ProbeCost {
  int64_t batched_forwards = 0;
  int64_t vjps = 0;
  int64_t vmapped_forwards = 0;  // the value route, vectorized: one forward of B one-sample batches
  int64_t sample_forwards = 0;   // the value route where vmap cannot run the model: one per sample
  double ms = 0.0;               // wall time of the whole probe, localization included
};

struct BatchIndependence {
  bool independent = true;
  // Reported samples -> every other sample its output depends on (from one VJP each); at most
  // probe_samples entries, only samples whose output depends on others.
  std::map<int64_t, std::vector<int64_t>> leaks;
  // Every sample whose output depends on other samples: those that differ alone, those a VJP
  // named sources for and, for dense mixing, those the target-side passes found (exact where the
  // model has double backwards).
  std::vector<int64_t> affected;
  // Every sample that some other sample's output depends on (gradient route, exact).
  std::vector<int64_t> sources;
  // Samples whose output changes when the sample is run alone: mixing the gradient route may not
  // see (a batch statistic taken through .item(), a data-dependent branch), over all B samples.
  std::vector<int64_t> differs_alone;
  // Not every leak could be decoded from the partition passes (some sample leaks into several
  // others, as through a batch mean), or there were more flagged samples than probe_samples.
  bool dense = false;
  // Every affected sample is in `leaks`, with all its sources.
  bool leaks_complete = true;
  std::string method;       // "input_gradient", "intermediate_gradient" (integer inputs) or "value"
  std::string alone_route;  // "vmap", "per_sample" or "none" (the model cannot run one sample)
  // The first submodule (dotted name) where mixing appears, when the model is a chain of
  // submodules psg4j can run one by one or a TorchScript module; "" when not localized.
  std::string mixing_module;
};

struct Determinism {
  bool deterministic = true;
  double max_abs_diff = 0.0;  // between two forwards of the same batch
};

// NaN or Inf in an input sample or in the model's output.
struct NonFinite {
  std::string where;             // "", "input" or "output"
  std::vector<int64_t> samples;  // the samples holding NaN/Inf
};

struct ProbeResult {
  NonFinite non_finite;
  Determinism determinism;
  // Absent when the probe stopped early: non-finite values, or a non-deterministic forward.
  std::optional<BatchIndependence> independence;
  ProbeCost cost;
};

// All probes, in order: finite inputs and output, determinism, batch independence. A clean probe
// costs 2 batched forwards, 2⌈log₂B⌉ VJPs and one vmapped forward (or B one-sample forwards).
// Throws BadInput for an output that is not floating-point or has no samples dimension.
ProbeResult probe(const Model& model, const Batch& batch, const ProbeOptions& options);

// The batch-independence part of probe(); BadInput when the probe stops before it (non-finite
// values, a non-deterministic forward), saying why.
BatchIndependence probe_batch_independence(const Model& model, const Batch& batch, const ProbeOptions& options);

// Two forwards of the batch; NaNs in the same places count as equal.
Determinism probe_determinism(const Model& model, const Batch& batch);

}  // namespace psg4j

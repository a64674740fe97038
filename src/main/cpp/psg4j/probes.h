// Black-box probes of a model on a real batch (issue "Diagnostics"): does sample i's output depend
// on other samples (batch mixing), and does the same forward give the same output twice?
#pragma once

#include "psg4j/batch.h"
#include "psg4j/model.h"

#include <map>
#include <string>
#include <vector>

namespace psg4j {

struct ProbeOptions {
  int64_t probe_samples = 3;  // samples probed: the first, the last and ones in between
  double tolerance = 1e-6;    // relative to the sample's own sensitivity
  uint64_t seed = 0;          // of the random output weights and perturbations
};

struct BatchIndependence {
  bool independent = true;
  // Probed sample -> the other samples its output depends on (only probed samples appear).
  std::map<int64_t, std::vector<int64_t>> leaks;
  // Probed samples whose output changes when the sample is run alone: mixing the other routes
  // cannot attribute to samples (a batch statistic taken through .item(), a data-dependent branch).
  std::vector<int64_t> differs_alone;
  std::string method;         // "input_gradient" or "perturbation"
  // The first submodule (dotted name) where mixing appears, when the model is a chain of
  // submodules psg4j can run one by one; "" when the model mixes but cannot be localized.
  std::string mixing_module;
};

// Costs one forward plus one backward per probed sample (float inputs), or one forward per
// probed sample and other sample (integer inputs), plus one forward of each probed sample alone,
// plus the same per submodule when localizing.
BatchIndependence probe_batch_independence(const Model& model, const Batch& batch,
                                           const ProbeOptions& options);

struct Determinism {
  bool deterministic = true;
  double max_abs_diff = 0.0;  // between two forwards of the same batch
};

Determinism probe_determinism(const Model& model, const Batch& batch);

}  // namespace psg4j

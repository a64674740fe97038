// Where mixing starts, for the samples the probe flagged: the first submodule of a chain that
// mixes on its own input (descending into its children), or, for any other TorchScript forward,
// the submodule of the first op whose output mixes (bisection over the recorded op outputs).
#pragma once

#include "psg4j/batch.h"
#include "psg4j/model.h"

#include <string>

namespace psg4j {

struct LocalizationOptions {
  double tolerance = 0.0;  // of the gradient route (see LeakFinder): exact
  uint64_t seed = 0;
};

// The first step of the model's chain whose own probe (both routes) finds mixing, or "" when
// the model is not a chain, its steps do not reproduce `batch_output`, or none mixes.
std::string first_mixing_step(const Model& model, const Batch& batch, const at::Tensor& batch_output,
                              const LocalizationOptions& options);

// The submodule of the first recorded op whose output has sample `target` depending on sample
// `source`; "" when the model is not TorchScript or no recorded output shows the pair.
std::string first_mixing_op_module(const Model& model, const Batch& batch, int64_t target, int64_t source,
                                   const LocalizationOptions& options);

}  // namespace psg4j

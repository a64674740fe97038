// The rounding level of a reference: how far the reference's own computation, in the model's
// precision, lies from the same computation done another way, measured per parameter on a few
// samples and scaled to every sample. The default tolerance rule widens each element's allclose
// tolerance by kRoundingMultiple times it. See Note [Rounding level] in rounding.cpp.
#pragma once

#include "psg4j/reference.h"

#include <cstdint>
#include <vector>

namespace psg4j {

// How many samples the rounding level is measured on (all of a smaller batch).
constexpr int64_t kRoundingSamples = 4;
// c: an element passes when |candidate - reference| <= atol + rtol·|reference| + c·ρ, ρ the
// sample's rounding level for the parameter.
constexpr double kRoundingMultiple = 4.0;
// The seed of the one-ulp moves of a model that cannot run in double.
constexpr uint64_t kPerturbationSeed = 0x5eed;

// What a model-precision reference is measured against.
enum class RoundingYardstick : int32_t {
  None = 0,                 // not measured (the model's parameters cannot be replaced)
  Double = 1,               // the same samples computed in double (cast_model)
  PerturbedParameters = 2,  // the model's precision, its parameters moved by one ulp
};

// The name reports give a yardstick: "double", "perturbed parameters" ("" for None).
std::string yardstick_name(RoundingYardstick yardstick);

struct RoundingLevels {
  RoundingYardstick yardstick = RoundingYardstick::None;
  std::vector<int64_t> samples;  // where it was measured
  // λ[reduction][leaf]: the level in units of the rms of a sample's reference gradient, for each
  // reduction and leaf measured (in the order given); a sample i's level is λ·rms(its reference).
  std::vector<std::vector<double>> per_rms;
};

// The samples the level is measured on: kRoundingSamples of them evenly spread over the batch,
// the first one first (all of a smaller batch). The same for every run of a batch size.
std::vector<int64_t> rounding_samples(int64_t batch_size);

// Measures λ for each of `leaves` (trainable parameters of `model`, by name) under each of
// `reductions`: the reference of each rounding sample in the model's precision and in double
// (where the model runs in double and its precision is below double), else with its parameters
// moved by one ulp; λ is the median over those samples of max|difference| / rms(reference), a
// sample whose reference for the leaf is all zeros not counting (a leaf no such sample reaches
// takes the largest λ of the others). Deterministic: the same at any worker count. Nothing is
// measured (yardstick None, per_rms empty) for a model whose parameters psg4j cannot replace.
RoundingLevels measure_rounding(const Model& model, const Batch& batch, const Loss& loss,
                                const std::vector<Reduction>& reductions, const NamedTensors& leaves,
                                const Spread& spread);

}  // namespace psg4j

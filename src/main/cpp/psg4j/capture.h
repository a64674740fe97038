// What Opacus's forward and backward hooks see, without hooks: each parameterized layer of a
// model's layer chain (layer_chain.h), its activations (the layer's input in the batched forward)
// and its backprops (the gradient of the batch loss with respect to the layer's output), so that a
// hooks-style grad sampler written outside psg4j (in Java, through the bridge) can compute
// per-sample gradients from them as Opacus's grad_sample/*.py functions do.
#pragma once

#include "psg4j/layer_chain.h"
#include "psg4j/reference.h"

#include <string>
#include <vector>

namespace psg4j {

// One use of one parameterized layer, in forward order: a module used twice gives two.
struct CapturedLayer {
  LayerSpec spec;
  // Per entry of spec.parameters: the model's name of that trainable parameter (its first name
  // when tied), or "" when the parameter is frozen.
  std::vector<std::string> trainable_names;
  at::Tensor activations;  // the layer's input as the model gave it (no grad)
  at::Tensor backprops;    // d batch loss / d layer output (no grad); zeros where the loss does not reach
};

// One batched forward of the batch as given (its batch dimension where the inputs have it: a
// hooks-style sampler must cope, as Opacus's do), the batch loss with problem.reduction over all
// B samples (a mean loss divides by B, as a training step's does), one backward to the layers'
// outputs. Throws an Unsupported Error when the model is no chain of standard layers or takes more
// than one input.
std::vector<CapturedLayer> capture_layers(const Problem& problem);

}  // namespace psg4j

// The registry of bytedeco's standard C++-frontend layers: how each runs on one tensor, and in
// which member its forward reads each parameter (so an engine can swap the parameters in).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace psg4j {

// Runs `layer` on `x` when it is a Sequential or a standard layer. Layers that return more than
// a tensor (RNN/LSTM/GRU, MultiheadAttention as self-attention) give their output sequence.
// Returns false for a module type the registry does not know.
bool run_standard_layer(torch::nn::Module& layer, const at::Tensor& x, at::Tensor* out);

// Bilinear takes two inputs; true when `layer` is one and has run.
bool run_two_input_layer(torch::nn::Module& layer, const at::Tensor& x1, const at::Tensor& x2,
                         at::Tensor* out);

// A member that a layer's forward reads a parameter from, named as the layer registers it.
using ParameterSlots = std::vector<std::pair<std::string, at::Tensor*>>;

// Whether the registry knows where `layer`'s type keeps its parameters.
bool has_parameter_slots(torch::nn::Module& layer);

// The slots of `layer`'s own parameters (not its children's). Throws a BadInput Error naming the
// layer type when the registry does not know where that type keeps its parameters.
ParameterSlots parameter_slots(torch::nn::Module& layer);

}  // namespace psg4j

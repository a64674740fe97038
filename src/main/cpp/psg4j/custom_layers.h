// Users' own C++-frontend layer types, registered at run time (from Java through the bridge):
// each a name, the parameter slots its forward reads and a forward of the user's. They join the
// layer registry (frontend_layers.h), so models holding them run on every engine and probe.
#pragma once

#include "psg4j/frontend_layers.h"

#include <ATen/ATen.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch {
namespace nn {
class AnyModule;
class Module;
}
}  // namespace torch

namespace psg4j {

// A user's layer forward: the input, then the layer's parameters in the order of its slots (the
// layer's own, or the ones an engine swapped in).
using CustomForward =
    std::function<at::Tensor(const at::Tensor& input, const std::vector<at::Tensor>& parameters)>;

constexpr size_t kMaxCustomLayerTypes = 1024;
constexpr size_t kMaxParameterSlots = 64;
constexpr size_t kMaxLayerNameLength = 200;

// Registers the layer type `name` (as Module::name() reports it) whose forward reads the
// parameters `slots`. Safe to call while other threads run models. Throws a BadInput Error for
// an empty, overlong or ill-formed name or slot, a name already registered or one of a standard
// layer's, too many slots or types.
void register_custom_layer(const std::string& name, const std::vector<std::string>& slots, CustomForward forward);

// The user's type of `layer` (matched by Module::name()), or nullptr.
const LayerType* find_custom_layer_type(torch::nn::Module& layer);

// The user's registered type names, in registration order.
std::vector<std::string> custom_layer_type_names();

// A new layer of the registered type `type` whose parameters are the tensors `parameters` (name
// -> tensor, one per slot: the very tensors, nothing copied), to push into a Sequential. Throws a BadInput Error for an
// unknown type or parameters that are not exactly its slots.
torch::nn::AnyModule make_custom_layer(
    const std::string& type, const std::vector<std::pair<std::string, at::Tensor>>& parameters);

// A layer like make_custom_layer's whose parameters are those `module` registers (a Module of a
// registered type built without a forward of its own, e.g. in Java).
torch::nn::AnyModule custom_layer_of(torch::nn::Module& module);

}  // namespace psg4j

// The registry of C++-frontend layer types: one registration per type, giving its torch.nn name,
// how it runs on one tensor, in which members its forward reads its parameters (so an engine can
// swap them in) and the options the per-layer rules read. bytedeco's standard layers are
// registered here; users add their own layers (custom_layers.h) with a forward of their own.
#pragma once

#include "psg4j/layer_chain.h"

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace psg4j {

// A member that a layer's forward reads a parameter from, named as the layer registers it.
using ParameterSlots = std::vector<std::pair<std::string, at::Tensor*>>;

// One registered layer type. Only `name` and `matches` are always set; an unset function means
// the type has no such ability (Bilinear runs on two tensors only, a parameter-free layer has
// no slots).
struct LayerType {
  std::string name;                                   // torch.nn's name ("Linear") or the user's
  std::function<bool(torch::nn::Module&)> matches;    // whether a module is of this type
  std::function<at::Tensor(torch::nn::Module&, const at::Tensor&)> run;
  std::function<at::Tensor(torch::nn::Module&, const at::Tensor&, const at::Tensor&)> run_two;
  std::function<ParameterSlots(torch::nn::Module&)> slots;  // all the members the forward reads
  std::function<void(torch::nn::Module&, LayerSpec*)> options;
  // A replica of a module of this type whose forward reads the module's own parameter tensors,
  // for types whose modules cannot clone themselves (nullptr: clone() it).
  std::function<std::shared_ptr<torch::nn::Module>(torch::nn::Module&)> replica;
};

// The registered type of `layer`, or nullptr. bytedeco's standard layers first, then the user's.
// A returned type stays valid for the life of the process (registrations are never removed).
const LayerType* find_layer_type(torch::nn::Module& layer);

// Whether `name` is the torch.nn name of one of bytedeco's standard layers that psg4j registers.
bool is_builtin_layer_type_name(const std::string& name);

// The registered types that keep parameters psg4j can swap, by name: built-ins, then the user's.
std::vector<std::string> swappable_layer_type_names();

// Runs `layer` on `x` when it is a Sequential or a registered layer. Layers that return more than
// a tensor (RNN/LSTM/GRU, MultiheadAttention as self-attention) give their output sequence.
// Returns false for a module type the registry does not know.
bool run_standard_layer(torch::nn::Module& layer, const at::Tensor& x, at::Tensor* out);

// Bilinear takes two inputs; true when `layer` is one and has run.
bool run_two_input_layer(torch::nn::Module& layer, const at::Tensor& x1, const at::Tensor& x2,
                         at::Tensor* out);

// Whether the registry knows where `layer`'s type keeps its parameters.
bool has_parameter_slots(torch::nn::Module& layer);

// The slots of `layer`'s own parameters (not its children's). Throws a BadInput Error naming the
// layer type, and listing the registered ones, when the registry does not know where that type
// keeps its parameters.
ParameterSlots parameter_slots(torch::nn::Module& layer);

// Fills the options of `spec` that the per-layer rules read (stride, padding_idx, in-place, ...)
// from `layer`, when its registered type has any.
void read_layer_options(torch::nn::Module& layer, LayerSpec* spec);

// Module::name() caches a module's type name on its first call, a write: calls it once for every
// module of `root`'s tree, while one thread holds it, so that the registry's lookups by name (and
// the names its clones copy) are reads only.
void settle_layer_names(torch::nn::Module& root);

// A replica from the registry's replica hook, or nullptr when `layer`'s type has none.
std::shared_ptr<torch::nn::Module> registry_replica(torch::nn::Module& layer);

}  // namespace psg4j

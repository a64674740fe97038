// Model adapters: one interface over TorchScript modules, C++-frontend modules and Java callbacks.
#pragma once

#include "psg4j/layer_chain.h"

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch {
namespace jit {
struct Module;
}
namespace nn {
class Module;
}
}  // namespace torch

namespace psg4j {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// A trainable parameter with the other names the same tensor has in the model: tied parameters
// (one tensor registered under several names, or a submodule used twice) have one gradient, the
// sum over every use, reported under the first name (DESIGN §1).
struct TrainableParameter {
  std::string name;                  // the first name named_parameters() gives it
  at::Tensor tensor;
  std::vector<std::string> aliases;  // its other names, in named_parameters() order
};
using TrainableParameters = std::vector<TrainableParameter>;

// Groups `all` by tensor identity, in order of first appearance.
TrainableParameters tie_by_identity(const NamedTensors& all);

// A submodule of a model that psg4j can run on its own, for localizing what a probe finds.
struct ModelStep {
  std::string name;  // dotted, as named_modules() names it
  std::function<at::Tensor(const at::Tensor&)> run;
  // Its own children as a chain (empty when it has none, or is not a chain psg4j can run).
  std::function<std::vector<ModelStep>()> children;
};

// A model's forward held by one caller for many calls (a reference worker's samples): what a
// forward sets up (a replica leased and brought to the model's mode) is done once, when it is
// made. Used by one thread at a time; the model's mode must not change while it lives.
class BoundForward {
 public:
  virtual ~BoundForward() = default;
  virtual at::Tensor operator()(const std::vector<at::Tensor>& inputs) = 0;
};

// Every method may be called from any number of threads at once, and none changes anything the
// caller can reach: modules run on private replicas of their structure that share the caller's
// parameter tensors (so in-place updates of them are seen), and parameters are swapped only into
// a replica leased to one call. Buffers are shared too, except in train mode, where forwards write
// them (BatchNorm's running statistics): each replica then has its own copies.
class Model {
 public:
  virtual ~Model() = default;
  // Runs the model on one batch (of any size).
  virtual at::Tensor forward(const std::vector<at::Tensor>& inputs) const = 0;
  // torch.func.functional_call: runs the model with `parameters` (one per trainable parameter, in
  // trainable_parameters() order; a tied parameter's one value serves all its names).
  virtual at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                        const std::vector<at::Tensor>& parameters) const = 0;
  // The trainable parameters (requires_grad), tied ones once, named as named_parameters() first
  // names them.
  virtual TrainableParameters parameters() const = 0;
  // parameters() without the aliases.
  NamedTensors trainable_parameters() const;
  virtual std::string describe() const = 0;
  // The top-level submodules in registration order, each runnable on one tensor. Whether the
  // forward really chains them is for the caller to check (run them and compare). Empty when the
  // model has no such structure (a Java function, a single layer).
  virtual std::vector<ModelStep> steps() const { return {}; }
  // forward() for one caller's many calls; by default it calls forward().
  virtual std::unique_ptr<BoundForward> bind_forward() const;
  // Every tensor the forward reads that a caller may replace, by name: the parameters, trainable
  // or frozen, under each of their names, then the buffers. Empty where the model's own tensors
  // cannot be replaced (a Java function's closure, a layer whose members psg4j does not know).
  virtual NamedTensors state() const { return {}; }
  // bind_forward() with `state` (names from state(); any subset) in place of the model's own
  // tensors: what runs a model in another precision (model_variants.h). The forward runs on a
  // structure of the bound forward's own (outputs may be differentiated after it is gone); nothing
  // the caller can reach changes. A BadInput Error where the model has no such state.
  virtual std::unique_ptr<BoundForward> bind_forward_with(const NamedTensors& state) const;
  // The forward as a chain of standard layers (a Sequential's children), passed to `visit` while
  // this call holds the replica they run on (in the caller's module's train/eval mode, with its
  // parameter tensors). False, and `visit` not called, when the forward is not known to be one.
  virtual bool visit_layer_chain(const LayerChainVisitor& visit) const { return false; }
};

// A forward in functional form: the inputs, then the parameters to use (trainable order).
using ForwardFunction = std::function<at::Tensor(const std::vector<at::Tensor>& inputs,
                                                 const std::vector<at::Tensor>& parameters)>;

std::shared_ptr<Model> torchscript_model(const torch::jit::Module& module);
// Borrows `module`: the caller keeps it alive while the model is used. Throws a BadInput Error
// when the module cannot be cloned (its replicas are clones whose parameters are the module's).
std::shared_ptr<Model> frontend_model(torch::nn::Module* module);
// A model whose forward is a function of its inputs and parameters (a Java callback); forward()
// passes `parameters`, functional_forward() the engine's.
std::shared_ptr<Model> function_model(NamedTensors parameters, ForwardFunction forward,
                                      std::string description);

}  // namespace psg4j

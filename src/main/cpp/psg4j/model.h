// Model adapters: one interface over TorchScript modules, C++-frontend modules and Java callbacks.
#pragma once

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

// A submodule of a model that psg4j can run on its own, for localizing what a probe finds.
struct ModelStep {
  std::string name;  // dotted, as named_modules() names it
  std::function<at::Tensor(const at::Tensor&)> run;
  // Its own children as a chain (empty when it has none, or is not a chain psg4j can run).
  std::function<std::vector<ModelStep>()> children;
};

class Model {
 public:
  virtual ~Model() = default;
  // Runs the model on one batch (of any size). Must be safe to call from several threads at once.
  virtual at::Tensor forward(const std::vector<at::Tensor>& inputs) const = 0;
  // torch.func.functional_call: runs the model with `parameters` (one per trainable parameter, in
  // trainable_parameters() order) in place of its own, and restores its own on every path.
  // Calls on one model are serialized, and forward() waits while a call is in progress.
  virtual at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                        const std::vector<at::Tensor>& parameters) const = 0;
  // The trainable parameters (requires_grad), named as named_parameters() names them.
  virtual NamedTensors trainable_parameters() const = 0;
  virtual std::string describe() const = 0;
  // The top-level submodules in registration order, each runnable on one tensor. Whether the
  // forward really chains them is for the caller to check (run them and compare). Empty when the
  // model has no such structure (a Java function, a single layer).
  virtual std::vector<ModelStep> steps() const { return {}; }
};

// A forward in functional form: the inputs, then the parameters to use (trainable order).
using ForwardFunction = std::function<at::Tensor(const std::vector<at::Tensor>& inputs,
                                                 const std::vector<at::Tensor>& parameters)>;

std::shared_ptr<Model> torchscript_model(const torch::jit::Module& module);
// Borrows `module`: the caller keeps it alive while the model is used.
std::shared_ptr<Model> frontend_model(torch::nn::Module* module);
// A model whose forward is a function of its inputs and parameters (a Java callback); forward()
// passes `parameters`, functional_forward() the engine's.
std::shared_ptr<Model> function_model(NamedTensors parameters, ForwardFunction forward,
                                      std::string description);

}  // namespace psg4j

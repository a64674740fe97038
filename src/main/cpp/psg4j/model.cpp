#include "psg4j/model.h"

#include "psg4j/error.h"

#include <torch/nn.h>
#include <torch/script.h>

#include <sstream>

namespace psg4j {
namespace {

at::Tensor single_tensor_output(const c10::IValue& output, const std::string& model) {
  if (output.isTensor()) return output.toTensor();
  std::ostringstream msg;
  msg << model << " returned a " << output.tagKind()
      << ", but psg4j needs a single tensor output: wrap the model so forward returns one tensor";
  throw Error(ErrorKind::ModelFailure, msg.str());
}

NamedTensors only_trainable(NamedTensors all) {
  NamedTensors trainable;
  for (auto& [name, tensor] : all) {
    if (tensor.requires_grad()) trainable.emplace_back(std::move(name), std::move(tensor));
  }
  return trainable;
}

class TorchScriptModel final : public Model {
 public:
  explicit TorchScriptModel(torch::jit::Module module) : module_(std::move(module)) {}

  at::Tensor forward(const std::vector<at::Tensor>& inputs) const override {
    std::vector<c10::IValue> args(inputs.begin(), inputs.end());
    // jit::Module is a handle onto a shared object: calling forward on a copy is safe and
    // lets this method stay const.
    torch::jit::Module module = module_;
    return single_tensor_output(module.forward(std::move(args)), describe());
  }

  NamedTensors trainable_parameters() const override {
    NamedTensors all;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) all.emplace_back(p.name, p.value);
    return only_trainable(std::move(all));
  }

  std::string describe() const override {
    return "TorchScript module " + module_.type()->name()->qualifiedName();
  }

 private:
  torch::jit::Module module_;
};

// The standard layers whose forward takes one tensor; Sequential chains any of these.
template <typename Layer>
bool try_forward(torch::nn::Module* module, const at::Tensor& x, at::Tensor* out) {
  if (auto* layer = dynamic_cast<Layer*>(module)) {
    *out = layer->forward(x);
    return true;
  }
  return false;
}

class FrontendModel final : public Model {
 public:
  explicit FrontendModel(torch::nn::Module* module) : module_(module) {
    try {
      owner_ = module->shared_from_this();
    } catch (const std::bad_weak_ptr&) {
      // Not owned by a shared_ptr: the Java side keeps it alive.
    }
  }

  at::Tensor forward(const std::vector<at::Tensor>& inputs) const override {
    if (inputs.size() != 1) {
      bad_input(describe() + " takes one input tensor but the batch has " +
                std::to_string(inputs.size()) + ": use Models.function(...) for multi-input models");
    }
    const at::Tensor& x = inputs[0];
    at::Tensor out;
    if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(module_)) return seq->forward(x);
    if (try_forward<torch::nn::LinearImpl>(module_, x, &out) ||
        try_forward<torch::nn::Conv1dImpl>(module_, x, &out) ||
        try_forward<torch::nn::Conv2dImpl>(module_, x, &out) ||
        try_forward<torch::nn::Conv3dImpl>(module_, x, &out) ||
        try_forward<torch::nn::EmbeddingImpl>(module_, x, &out) ||
        try_forward<torch::nn::LayerNormImpl>(module_, x, &out) ||
        try_forward<torch::nn::GroupNormImpl>(module_, x, &out)) {
      return out;
    }
    bad_input("psg4j cannot run the forward of the C++-frontend module " + module_->name() +
              " natively: put it inside a Sequential of standard layers, or use "
              "Models.function(...) with a Java forward");
  }

  NamedTensors trainable_parameters() const override {
    NamedTensors all;
    for (const auto& p : module_->named_parameters(/*recurse=*/true)) all.emplace_back(p.key(), p.value());
    return only_trainable(std::move(all));
  }

  std::string describe() const override { return "C++-frontend module " + module_->name(); }

 private:
  torch::nn::Module* module_;
  std::shared_ptr<torch::nn::Module> owner_;
};

class FunctionModel final : public Model {
 public:
  FunctionModel(NamedTensors parameters, ForwardFunction forward, std::string description)
      : parameters_(std::move(parameters)), forward_(std::move(forward)),
        description_(std::move(description)) {}

  at::Tensor forward(const std::vector<at::Tensor>& inputs) const override {
    at::Tensor out = forward_(inputs);
    if (!out.defined()) {
      throw Error(ErrorKind::ModelFailure, describe() + " returned no tensor");
    }
    return out;
  }

  NamedTensors trainable_parameters() const override { return only_trainable(parameters_); }
  std::string describe() const override { return description_; }

 private:
  NamedTensors parameters_;
  ForwardFunction forward_;
  std::string description_;
};

}  // namespace

std::shared_ptr<Model> torchscript_model(const torch::jit::Module& module) {
  return std::make_shared<TorchScriptModel>(module);
}

std::shared_ptr<Model> frontend_model(torch::nn::Module* module) {
  if (module == nullptr) bad_input("the C++-frontend module is null");
  return std::make_shared<FrontendModel>(module);
}

std::shared_ptr<Model> function_model(NamedTensors parameters, ForwardFunction forward,
                                      std::string description) {
  for (const auto& [name, tensor] : parameters) {
    if (!tensor.defined()) bad_input("parameter '" + name + "' of " + description + " is an undefined tensor");
  }
  return std::make_shared<FunctionModel>(std::move(parameters), std::move(forward),
                                         std::move(description));
}

}  // namespace psg4j

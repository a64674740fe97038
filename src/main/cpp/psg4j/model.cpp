#include "psg4j/model.h"

#include "psg4j/error.h"
#include "psg4j/frontend_layers.h"

#include <torch/nn.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <map>
#include <mutex>
#include <shared_mutex>
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

void require_one_per_parameter(const std::vector<at::Tensor>& given, size_t expected,
                               const std::string& model) {
  if (given.size() != expected) {
    bad_input("functional call of " + model + " got " + std::to_string(given.size()) +
              " parameters for its " + std::to_string(expected) + " trainable ones");
  }
}

// Puts replacement values into a model's own slots and puts the originals back when it goes out
// of scope, so an exception thrown by the forward never leaves a model holding an engine's
// (possibly batched) tensors.
class SwappedParameters {
 public:
  using Setter = std::function<void(const c10::IValue&)>;

  void swap(const c10::IValue& original, Setter set, const c10::IValue& replacement) {
    restore_.emplace_back(set, original);
    set(replacement);
  }

  ~SwappedParameters() {
    for (auto it = restore_.rbegin(); it != restore_.rend(); ++it) it->first(it->second);
  }

 private:
  std::vector<std::pair<Setter, c10::IValue>> restore_;
};

// A model whose forward reads its parameters from slots of its own: a functional call swaps the
// given parameters in for its duration. Forwards share a lock that a functional call takes alone,
// so no forward ever sees another call's parameters.
class SlotModel : public Model {
 public:
  at::Tensor forward(const std::vector<at::Tensor>& inputs) const final {
    std::shared_lock<std::shared_mutex> reading(swap_mutex_);
    return run(inputs);
  }

  at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                const std::vector<at::Tensor>& parameters) const final {
    std::unique_lock<std::shared_mutex> swapping(swap_mutex_);
    const NamedTensors own = trainable_parameters();
    require_one_per_parameter(parameters, own.size(), describe());
    SwappedParameters swapped;
    swap_in(own, parameters, &swapped);
    return run_swapped(inputs);
  }

 protected:
  virtual at::Tensor run(const std::vector<at::Tensor>& inputs) const = 0;
  virtual at::Tensor run_swapped(const std::vector<at::Tensor>& inputs) const { return run(inputs); }
  // Puts parameters[k] where the forward reads own[k] from.
  virtual void swap_in(const NamedTensors& own, const std::vector<at::Tensor>& parameters,
                       SwappedParameters* swapped) const = 0;

 private:
  mutable std::shared_mutex swap_mutex_;
};

std::vector<ModelStep> jit_steps(const torch::jit::Module& module, const std::string& prefix) {
  std::vector<ModelStep> steps;
  for (const auto& child : module.named_children()) {
    const std::string name = prefix.empty() ? child.name : prefix + "." + child.name;
    torch::jit::Module submodule = child.value;
    steps.push_back({name,
                     [submodule](const at::Tensor& x) mutable { return submodule.forward({x}).toTensor(); },
                     [submodule, name] { return jit_steps(submodule, name); }});
  }
  return steps;
}

// Only a Sequential is known to chain its children; its AnyModules run the layers psg4j has no
// registry entry for.
std::vector<ModelStep> frontend_steps(torch::nn::Module& module, const std::string& prefix) {
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(&module);
  if (sequential == nullptr) return {};
  std::vector<ModelStep> steps;
  const auto names = sequential->named_children();
  size_t k = 0;
  for (torch::nn::AnyModule& any : *sequential) {
    const std::string local = k < names.size() ? names[k].key() : std::to_string(k);
    const std::string name = prefix.empty() ? local : prefix + "." + local;
    torch::nn::Module* layer = any.ptr().get();
    torch::nn::AnyModule* runner = &any;
    steps.push_back({name,
                     [layer, runner](const at::Tensor& x) {
                       at::Tensor out;
                       return run_standard_layer(*layer, x, &out) ? out : runner->forward<at::Tensor>(x);
                     },
                     [layer, name] { return frontend_steps(*layer, name); }});
    ++k;
  }
  return steps;
}

class TorchScriptModel final : public SlotModel {
 public:
  explicit TorchScriptModel(torch::jit::Module module) : module_(std::move(module)) {}

  NamedTensors trainable_parameters() const override {
    NamedTensors all;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) all.emplace_back(p.name, p.value);
    return only_trainable(std::move(all));
  }

  std::string describe() const override {
    return "TorchScript module " + module_.type()->name()->qualifiedName();
  }

  std::vector<ModelStep> steps() const override { return jit_steps(module_, ""); }

 private:
  at::Tensor run(const std::vector<at::Tensor>& inputs) const override {
    std::vector<c10::IValue> args(inputs.begin(), inputs.end());
    // jit::Module is a handle onto a shared object: calling forward on a copy is safe and
    // lets this method stay const.
    torch::jit::Module module = module_;
    return single_tensor_output(module.forward(std::move(args)), describe());
  }

  // The profiling executor would specialize the graph for the engine's wrapped tensors, which
  // costs more than it saves on the one call they are used for.
  at::Tensor run_swapped(const std::vector<at::Tensor>& inputs) const override {
    torch::jit::GraphOptimizerEnabledGuard plain_interpreter(false);
    return run(inputs);
  }

  void swap_in(const NamedTensors& own, const std::vector<at::Tensor>& parameters,
               SwappedParameters* swapped) const override {
    for (size_t k = 0; k < own.size(); ++k) {
      // Parameters live in attribute slots of the submodule that registers them.
      auto [owner, attribute] = owner_of(own[k].first);
      swapped->swap(owner.attr(attribute), setter(owner, attribute), parameters[k]);
    }
    refresh_flat_weights(swapped);
  }

  static SwappedParameters::Setter setter(torch::jit::Module owner, const std::string& attribute) {
    return [owner, attribute](const c10::IValue& value) mutable { owner.setattr(attribute, value); };
  }

  // Scripted RNN/GRU/LSTM modules read their weights from the list _flat_weights, filled from
  // the parameters when the module was scripted: point it at the current (swapped) parameters.
  void refresh_flat_weights(SwappedParameters* swapped) const {
    for (const torch::jit::Module& m : module_.modules()) {
      if (!m.hasattr("_flat_weights") || !m.hasattr("_flat_weights_names")) continue;
      const c10::IValue original = m.attr("_flat_weights");
      c10::impl::GenericList fresh = original.toList().copy();
      const c10::impl::GenericList names = m.attr("_flat_weights_names").toList();
      for (size_t k = 0; k < names.size() && k < fresh.size(); ++k) {
        const std::string name = names.get(k).toStringRef();
        if (m.hasattr(name)) fresh.set(k, m.attr(name));
      }
      swapped->swap(original, setter(m, "_flat_weights"), fresh);
    }
  }

  // "encoder.fc.weight" -> (the module at encoder.fc, "weight").
  std::pair<torch::jit::Module, std::string> owner_of(const std::string& name) const {
    torch::jit::Module owner = module_;
    size_t start = 0;
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', start)) {
      owner = owner.attr(name.substr(start, dot - start)).toModule();
      start = dot + 1;
    }
    return {owner, name.substr(start)};
  }

  torch::jit::Module module_;
};

class FrontendModel final : public SlotModel {
 public:
  explicit FrontendModel(torch::nn::Module* module) : module_(module) {
    try {
      owner_ = module->shared_from_this();
    } catch (const std::bad_weak_ptr&) {
      // Not owned by a shared_ptr: the Java side keeps it alive.
    }
  }

  NamedTensors trainable_parameters() const override {
    NamedTensors all;
    for (const auto& p : module_->named_parameters(/*recurse=*/true)) all.emplace_back(p.key(), p.value());
    return only_trainable(std::move(all));
  }

  std::string describe() const override { return "C++-frontend module " + module_->name(); }

  std::vector<ModelStep> steps() const override { return frontend_steps(*module_, ""); }

 private:
  void swap_in(const NamedTensors& own, const std::vector<at::Tensor>& parameters,
               SwappedParameters* swapped) const override {
    const std::map<std::string, at::Tensor*> slots = parameter_slots_by_name();
    for (size_t k = 0; k < own.size(); ++k) {
      at::Tensor* slot = slots.at(own[k].first);
      swapped->swap(*slot, [slot](const c10::IValue& t) { *slot = t.toTensor(); }, parameters[k]);
    }
  }

  at::Tensor run(const std::vector<at::Tensor>& inputs) const override {
    at::Tensor out;
    if (inputs.size() == 2 && run_two_input_layer(*module_, inputs[0], inputs[1], &out)) return out;
    if (inputs.size() != 1) {
      bad_input(describe() + " takes one input tensor but the batch has " +
                std::to_string(inputs.size()) + ": use Models.function(...) for multi-input models");
    }
    if (run_standard_layer(*module_, inputs[0], &out)) return out;
    bad_input("psg4j cannot run the forward of the C++-frontend module " + module_->name() +
              " natively: put it inside a Sequential of standard layers, or use "
              "Models.function(...) with a Java forward");
  }

  // Full parameter name -> the member the owning layer's forward reads it from.
  std::map<std::string, at::Tensor*> parameter_slots_by_name() const {
    std::map<std::string, at::Tensor*> slots;
    const auto add = [&slots](torch::nn::Module& layer, const std::string& prefix) {
      if (layer.named_parameters(/*recurse=*/false).is_empty()) return;
      for (const auto& [local, slot] : parameter_slots(layer)) {
        slots[prefix.empty() ? local : prefix + "." + local] = slot;
      }
    };
    // The module itself by reference: named_modules(include_self=true) needs it owned by a
    // shared_ptr, and bytedeco makes some layers (BatchNorm*, InstanceNorm*) without one.
    add(*module_, "");
    for (const auto& item : module_->named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
      add(*item.value(), item.key());
    }
    return slots;
  }

  torch::nn::Module* module_;
  std::shared_ptr<torch::nn::Module> owner_;
};

class FunctionModel final : public Model {
 public:
  FunctionModel(NamedTensors parameters, ForwardFunction forward, std::string description)
      : parameters_(std::move(parameters)), forward_(std::move(forward)),
        description_(std::move(description)) {}

  at::Tensor forward(const std::vector<at::Tensor>& inputs) const override {
    std::vector<at::Tensor> own;
    for (const auto& entry : parameters_) own.push_back(entry.second);
    return call(inputs, own);
  }

  // The callback sees every parameter; the frozen ones keep their own values.
  at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                const std::vector<at::Tensor>& trainable) const override {
    require_one_per_parameter(trainable, trainable_parameters().size(), describe());
    std::vector<at::Tensor> all;
    size_t next = 0;
    for (const auto& entry : parameters_) {
      all.push_back(entry.second.requires_grad() ? trainable[next++] : entry.second);
    }
    return call(inputs, all);
  }

  NamedTensors trainable_parameters() const override { return only_trainable(parameters_); }
  std::string describe() const override { return description_; }

 private:
  at::Tensor call(const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& parameters) const {
    at::Tensor out = forward_(inputs, parameters);
    if (!out.defined()) {
      throw Error(ErrorKind::ModelFailure, describe() + " returned no tensor");
    }
    return out;
  }

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

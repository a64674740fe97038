#include "psg4j/custom_layers.h"

#include "psg4j/error.h"

#include <torch/nn.h>

#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace psg4j {
namespace {

namespace nn = torch::nn;

struct CustomLayerType {
  std::string name;
  std::vector<std::string> slots;
  CustomForward forward;
};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// `parameters` in `type`'s slot order; every slot given, nothing else.
std::vector<at::Tensor> in_slot_order(const CustomLayerType& type,
                                      const std::vector<std::pair<std::string, at::Tensor>>& parameters) {
  std::vector<at::Tensor> values(type.slots.size());
  std::vector<bool> given(type.slots.size(), false);
  for (const auto& [name, tensor] : parameters) {
    size_t k = 0;
    while (k < type.slots.size() && type.slots[k] != name) ++k;
    if (k == type.slots.size()) {
      bad_input("the layer type " + type.name + " has no parameter slot '" + name + "' (its slots: " +
                joined(type.slots) + "): give exactly the parameters its registration names");
    }
    if (given[k]) bad_input("the parameter '" + name + "' of a " + type.name + " layer is given twice");
    if (!tensor.defined()) bad_input("the parameter '" + name + "' of a " + type.name + " layer is undefined");
    if (!tensor.is_leaf()) {
      bad_input("the parameter '" + name + "' of a " + type.name + " layer is the result of an operation: "
                "give a leaf tensor (detach() it, then requires_grad_(true))");
    }
    values[k] = tensor;
    given[k] = true;
  }
  for (size_t k = 0; k < given.size(); ++k) {
    if (!given[k]) {
      bad_input("the " + type.name + " layer lacks its parameter '" + type.slots[k] + "' (its slots: " +
                joined(type.slots) + "): give one tensor per slot");
    }
  }
  return values;
}

// A layer of a user's type: its forward is the type's, reading the tensors of `values_` (the
// slots, where an engine swaps its parameters in), registered as parameters under the slots' names.
class CustomLayerImpl : public nn::Cloneable<CustomLayerImpl> {
 public:
  CustomLayerImpl(std::shared_ptr<const CustomLayerType> type, std::vector<at::Tensor> values)
      : Cloneable(type->name), type_(std::move(type)), values_(std::move(values)) {
    for (size_t k = 0; k < values_.size(); ++k) {
      values_[k] = register_parameter(type_->slots[k], values_[k], values_[k].requires_grad());
    }
  }

  // Cloneable::clone: fresh parameters of the same shapes, which clone() then fills with copies.
  void reset() override {
    for (size_t k = 0; k < values_.size(); ++k) {
      values_[k] = register_parameter(type_->slots[k], at::empty_like(values_[k]), values_[k].requires_grad());
    }
  }

  at::Tensor forward(const at::Tensor& x) { return type_->forward(x, values_); }

  ParameterSlots slots() {
    ParameterSlots out;
    for (size_t k = 0; k < values_.size(); ++k) out.emplace_back(type_->slots[k], &values_[k]);
    return out;
  }

 private:
  std::shared_ptr<const CustomLayerType> type_;
  std::vector<at::Tensor> values_;
};

// A Module of a user's type built without a forward (a Java `new Module(name)` that registered
// its parameters): its forward is the type's, reading the registered parameters themselves.
// A pointer to member taken through a subclass reaches the protected dictionary legally.
struct RegisteredParameters : nn::Module {
  static ParameterSlots of(nn::Module& module) {
    ParameterSlots slots;
    for (auto& item : module.*(&RegisteredParameters::parameters_)) slots.emplace_back(item.key(), &item.value());
    return slots;
  }
};

std::vector<std::pair<std::string, at::Tensor>> own_parameters(nn::Module& module) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : module.named_parameters(/*recurse=*/false)) out.emplace_back(p.key(), p.value());
  return out;
}

std::shared_ptr<CustomLayerImpl> layer_of(const std::shared_ptr<const CustomLayerType>& type, nn::Module& module) {
  if (!module.named_children().is_empty() || !module.named_buffers(/*recurse=*/false).is_empty()) {
    bad_input("the " + type->name + " layer has submodules or buffers, which a registered layer type does "
              "not carry: register only parameters (its slots), or use Models.function(...)");
  }
  auto layer = std::make_shared<CustomLayerImpl>(type, in_slot_order(*type, own_parameters(module)));
  layer->train(module.is_training());
  return layer;
}

LayerType registry_entry(const std::shared_ptr<const CustomLayerType>& type) {
  LayerType entry;
  entry.name = type->name;
  entry.matches = [name = type->name](nn::Module& m) { return m.name() == name; };
  entry.run = [type](nn::Module& m, const at::Tensor& x) {
    if (auto* layer = dynamic_cast<CustomLayerImpl*>(&m)) return layer->forward(x);
    return type->forward(x, in_slot_order(*type, own_parameters(m)));
  };
  entry.slots = [](nn::Module& m) {
    if (auto* layer = dynamic_cast<CustomLayerImpl*>(&m)) return layer->slots();
    return RegisteredParameters::of(m);
  };
  // A Module built without a forward cannot clone itself: its replica is a layer of the type
  // holding its parameters; a CustomLayerImpl clones itself.
  entry.replica = [type](nn::Module& m) -> std::shared_ptr<nn::Module> {
    if (dynamic_cast<CustomLayerImpl*>(&m) != nullptr) return nullptr;
    return layer_of(type, m);
  };
  return entry;
}

class CustomRegistry {
 public:
  void add(std::shared_ptr<const CustomLayerType> type) {
    std::unique_lock<std::shared_mutex> lock(mutex_);
    if (entries_.count(type->name) != 0) {
      bad_input("the layer type " + type->name + " is registered already: register each type once, "
                "under a name of its own");
    }
    if (entries_.size() >= kMaxCustomLayerTypes) {
      bad_input("at most " + std::to_string(kMaxCustomLayerTypes) + " layer types can be registered");
    }
    types_.emplace(type->name, type);
    entries_.emplace(type->name, std::make_unique<LayerType>(registry_entry(type)));
    order_.push_back(type->name);
  }

  // Entries are never removed, so the pointer outlives the lock.
  const LayerType* entry(const std::string& name) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    auto found = entries_.find(name);
    return found == entries_.end() ? nullptr : found->second.get();
  }

  std::shared_ptr<const CustomLayerType> type(const std::string& name) const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    auto found = types_.find(name);
    return found == types_.end() ? nullptr : found->second;
  }

  std::vector<std::string> names() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return order_;
  }

  bool empty() const {
    std::shared_lock<std::shared_mutex> lock(mutex_);
    return order_.empty();
  }

 private:
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<const CustomLayerType>> types_;
  std::unordered_map<std::string, std::unique_ptr<LayerType>> entries_;
  std::vector<std::string> order_;
};

CustomRegistry& registry() {
  static CustomRegistry instance;
  return instance;
}

bool name_char(char c, bool type_name) {
  const bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  return word || (type_name && (c == '.' || c == '$' || c == ':' || c == '-'));
}

void check_name(const std::string& name, const std::string& what, bool type_name) {
  if (name.empty() || name.size() > kMaxLayerNameLength) {
    bad_input(what + " must have 1 to " + std::to_string(kMaxLayerNameLength) + " characters, got " +
              std::to_string(name.size()));
  }
  for (char c : name) {
    if (!name_char(c, type_name)) {
      bad_input(what + " '" + name + "' has the character '" + std::string(1, c) + "': use letters, digits, '_'" +
                (type_name ? ", '.', '$', ':' or '-'" : ""));
    }
  }
}

std::shared_ptr<const CustomLayerType> registered_type(const std::string& name) {
  auto type = registry().type(name);
  if (!type) {
    const std::vector<std::string> names = registry().names();
    bad_input("no layer type " + name + " is registered (registered: " + (names.empty() ? "none" : joined(names)) +
              "): register it first with dev.psg4j.model.FrontendLayers.register(name, parameter slots, forward)");
  }
  return type;
}

}  // namespace

void register_custom_layer(const std::string& name, const std::vector<std::string>& slots, CustomForward forward) {
  check_name(name, "a layer type name", /*type_name=*/true);
  if (is_builtin_layer_type_name(name) || name.rfind("torch::", 0) == 0) {
    bad_input("the layer type name " + name + " is one of psg4j's standard layers (or LibTorch's): give your "
              "layer a name of its own");
  }
  if (slots.empty() || slots.size() > kMaxParameterSlots) {
    bad_input("the layer type " + name + " needs 1 to " + std::to_string(kMaxParameterSlots) +
              " parameter slots, got " + std::to_string(slots.size()));
  }
  for (size_t k = 0; k < slots.size(); ++k) {
    check_name(slots[k], "the parameter slot name", /*type_name=*/false);
    for (size_t m = 0; m < k; ++m) {
      if (slots[m] == slots[k]) bad_input("the layer type " + name + " names the slot '" + slots[k] + "' twice");
    }
  }
  if (!forward) bad_input("the layer type " + name + " has no forward");
  registry().add(std::make_shared<const CustomLayerType>(CustomLayerType{name, slots, std::move(forward)}));
}

const LayerType* find_custom_layer_type(nn::Module& layer) {
  if (registry().empty()) return nullptr;  // Module::name() demangles a type name: skip it when no type can match
  return registry().entry(layer.name());
}

std::vector<std::string> custom_layer_type_names() { return registry().names(); }

nn::AnyModule make_custom_layer(const std::string& type,
                                const std::vector<std::pair<std::string, at::Tensor>>& parameters) {
  const auto registered = registered_type(type);
  return nn::AnyModule(std::make_shared<CustomLayerImpl>(registered, in_slot_order(*registered, parameters)));
}

nn::AnyModule custom_layer_of(nn::Module& module) {
  return nn::AnyModule(layer_of(registered_type(module.name()), module));
}

}  // namespace psg4j

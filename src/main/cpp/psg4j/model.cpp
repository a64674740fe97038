#include "psg4j/model.h"

#include "psg4j/error.h"
#include "psg4j/frontend_layers.h"
#include "psg4j/replicas.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/nn.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>

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

// Every name of every trainable parameter, with the index of its parameter in parameters()
// order: where a functional call puts each value.
std::vector<std::pair<std::string, size_t>> slot_names(const TrainableParameters& parameters) {
  std::vector<std::pair<std::string, size_t>> names;
  for (size_t k = 0; k < parameters.size(); ++k) {
    names.emplace_back(parameters[k].name, k);
    for (const std::string& alias : parameters[k].aliases) names.emplace_back(alias, k);
  }
  return names;
}

// Runs `make` as if no functorch transform were active: a replica may be made while an engine's
// vmap/grad levels are pushed (the pool grows inside a call), and its tensors must be plain.
template <typename Make>
auto outside_transforms(const Make& make) {
  c10::impl::ExcludeDispatchKeyGuard plain(c10::DispatchKeySet(
      {c10::DispatchKey::FuncTorchDynamicLayerFrontMode, c10::DispatchKey::FuncTorchDynamicLayerBackMode}));
  return make();
}

// Restores the default CPU generator's state when it ends: cloning a C++-frontend layer
// re-initializes it randomly before its tensors are replaced, which must not move the caller's
// random stream.
class PreservedCpuRandomState {
 public:
  PreservedCpuRandomState() : generator_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    state_ = generator_.get_state();
  }
  ~PreservedCpuRandomState() {
    std::lock_guard<std::mutex> lock(generator_.mutex());
    generator_.set_state(state_);
  }
  PreservedCpuRandomState(const PreservedCpuRandomState&) = delete;
  PreservedCpuRandomState& operator=(const PreservedCpuRandomState&) = delete;

 private:
  at::Generator generator_;
  at::Tensor state_;
};

// A model whose forward reads its parameters from slots of a module: a functional call swaps the
// given parameters into a replica leased to it alone and restores the replica's own afterwards.
template <typename Replica>
class SlotModel : public Model {
 public:
  at::Tensor forward(const std::vector<at::Tensor>& inputs) const final {
    auto lease = replicas_.acquire();
    follow(lease.get());
    return run(lease.get(), inputs);
  }

  at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                const std::vector<at::Tensor>& parameters) const final {
    const TrainableParameters own = this->parameters();
    require_one_per_parameter(parameters, own.size(), describe());
    auto lease = replicas_.acquire();
    follow(lease.get());
    SwappedParameters swapped;
    swap_in(lease.get(), slot_names(own), parameters, &swapped);
    return run_swapped(lease.get(), inputs);
  }

 protected:
  explicit SlotModel(std::function<Replica()> make_replica)
      : replicas_([make = std::move(make_replica)] { return outside_transforms(make); }) {}

  void warm_replicas() { replicas_.warm(); }

  // Brings a leased replica to the caller's module's current train/eval mode, with buffers shared
  // in eval mode and copies of the replica's own in train mode (where forwards write them).
  virtual void follow(Replica& replica) const = 0;
  virtual at::Tensor run(Replica& replica, const std::vector<at::Tensor>& inputs) const = 0;
  virtual at::Tensor run_swapped(Replica& replica, const std::vector<at::Tensor>& inputs) const {
    return run(replica, inputs);
  }
  // Puts parameters[index] into the slot of each (name, index) of `slots`, in `replica`.
  virtual void swap_in(Replica& replica, const std::vector<std::pair<std::string, size_t>>& slots,
                       const std::vector<at::Tensor>& parameters, SwappedParameters* swapped) const = 0;

  // A replica outside the pool, for callers that keep it (the steps of a localization).
  Replica private_replica() const { return replicas_.make(); }

 private:
  mutable ReplicaPool<Replica> replicas_;
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
// `keep_alive` owns the module the steps run (a private replica).
std::vector<ModelStep> frontend_steps(torch::nn::Module& module, const std::string& prefix,
                                      const std::shared_ptr<torch::nn::Module>& keep_alive) {
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
                     [layer, runner, keep_alive](const at::Tensor& x) {
                       at::Tensor out;
                       return run_standard_layer(*layer, x, &out) ? out : runner->forward<at::Tensor>(x);
                     },
                     [layer, name, keep_alive] { return frontend_steps(*layer, name, keep_alive); }});
    ++k;
  }
  return steps;
}

bool any_in_training(const torch::jit::Module& module) {
  for (const torch::jit::Module& m : module.modules()) {
    if (m.is_training()) return true;
  }
  return false;
}

// "encoder.fc.weight" -> (the module at encoder.fc, "weight").
std::pair<torch::jit::Module, std::string> owner_of(const torch::jit::Module& root, const std::string& name) {
  torch::jit::Module owner = root;
  size_t start = 0;
  for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', start)) {
    owner = owner.attr(name.substr(start, dot - start)).toModule();
    start = dot + 1;
  }
  return {owner, name.substr(start)};
}

// A new module object of the same structure whose parameters and buffers are the very tensors of
// `module` (TorchScriptModel::follow gives it buffers of its own in train mode).
torch::jit::Module jit_replica(const torch::jit::Module& module) { return module.clone(/*inplace=*/true); }

class TorchScriptModel final : public SlotModel<torch::jit::Module> {
 public:
  explicit TorchScriptModel(torch::jit::Module module)
      : SlotModel([module] { return jit_replica(module); }), module_(std::move(module)) {
    warm_replicas();
  }

  TrainableParameters parameters() const override {
    NamedTensors all;
    for (const auto& p : module_.named_parameters(/*recurse=*/true)) all.emplace_back(p.name, p.value);
    return tie_by_identity(only_trainable(std::move(all)));
  }

  std::string describe() const override {
    return "TorchScript module " + module_.type()->name()->qualifiedName();
  }

  std::vector<ModelStep> steps() const override {
    torch::jit::Module replica = private_replica();
    follow(replica);
    return jit_steps(replica, "");
  }

 private:
  void follow(torch::jit::Module& replica) const override {
    std::vector<torch::jit::Module> own, copies;
    for (const torch::jit::Module& m : module_.modules()) own.push_back(m);
    for (const torch::jit::Module& m : replica.modules()) copies.push_back(m);
    for (size_t k = 0; k < own.size() && k < copies.size(); ++k) {
      torch::jit::Module copy = copies[k];
      if (copy.is_training() != own[k].is_training()) copy.setattr("training", own[k].is_training());
    }
    const bool training = any_in_training(module_);
    for (const auto& buffer : module_.named_buffers(/*recurse=*/true)) {
      auto [owner, attribute] = owner_of(replica, buffer.name);
      const bool shared = owner.attr(attribute).toTensor().is_same(buffer.value);
      if (training && shared) owner.setattr(attribute, outside_transforms([&] { return buffer.value.clone(); }));
      if (!training && !shared) owner.setattr(attribute, buffer.value);
    }
  }

  at::Tensor run(torch::jit::Module& replica, const std::vector<at::Tensor>& inputs) const override {
    std::vector<c10::IValue> args(inputs.begin(), inputs.end());
    return single_tensor_output(replica.forward(std::move(args)), describe());
  }

  // The profiling executor would specialize the graph for the engine's wrapped tensors, which
  // costs more than it saves on the one call they are used for.
  at::Tensor run_swapped(torch::jit::Module& replica, const std::vector<at::Tensor>& inputs) const override {
    torch::jit::GraphOptimizerEnabledGuard plain_interpreter(false);
    return run(replica, inputs);
  }

  void swap_in(torch::jit::Module& replica, const std::vector<std::pair<std::string, size_t>>& slots,
               const std::vector<at::Tensor>& parameters, SwappedParameters* swapped) const override {
    for (const auto& [name, k] : slots) {
      // Parameters live in attribute slots of the submodule that registers them.
      auto [owner, attribute] = owner_of(replica, name);
      swapped->swap(owner.attr(attribute), setter(owner, attribute), parameters[k]);
    }
    refresh_flat_weights(replica, swapped);
  }

  static SwappedParameters::Setter setter(torch::jit::Module owner, const std::string& attribute) {
    return [owner, attribute](const c10::IValue& value) mutable { owner.setattr(attribute, value); };
  }

  // Scripted RNN/GRU/LSTM modules read their weights from the list _flat_weights, filled from
  // the parameters when the module was scripted: point it at the current (swapped) parameters.
  static void refresh_flat_weights(const torch::jit::Module& replica, SwappedParameters* swapped) {
    for (const torch::jit::Module& m : replica.modules()) {
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

  torch::jit::Module module_;  // the caller's: read, never written
};

// Full parameter name -> the member of `module` that the owning layer's forward reads it from.
std::map<std::string, at::Tensor*> parameter_slots_by_name(torch::nn::Module& module) {
  std::map<std::string, at::Tensor*> slots;
  const auto add = [&slots](torch::nn::Module& layer, const std::string& prefix) {
    if (layer.named_parameters(/*recurse=*/false).is_empty()) return;
    for (const auto& [local, slot] : parameter_slots(layer)) {
      slots[prefix.empty() ? local : prefix + "." + local] = slot;
    }
  };
  // The module itself by reference: named_modules(include_self=true) needs it owned by a
  // shared_ptr, and bytedeco makes some layers (BatchNorm*, InstanceNorm*) without one.
  add(module, "");
  for (const auto& item : module.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    add(*item.value(), item.key());
  }
  return slots;
}

bool any_in_training(torch::nn::Module& module) {
  if (module.is_training()) return true;
  for (const auto& child : module.modules(/*include_self=*/false)) {
    if (child->is_training()) return true;
  }
  return false;
}

// Points a clone of a standard layer (and its children, e.g. MultiheadAttention's out_proj) at
// `original`'s tensors: its forward then reads the very parameters of `original`, and the
// registered copies share their storage (no second |θ| of memory), as do the buffers
// (FrontendModel::follow gives the clone copies of its own in train mode).
void share_tensors(torch::nn::Module& clone, torch::nn::Module& original) {
  c10::NoGradGuard no_grad;
  const auto own = original.named_parameters(/*recurse=*/false);
  for (const auto& copy : clone.named_parameters(/*recurse=*/false)) {
    if (const at::Tensor* p = own.find(copy.key())) copy.value().set_data(*p);
  }
  if (has_parameter_slots(clone)) {
    for (const auto& [name, slot] : parameter_slots(clone)) {
      if (const at::Tensor* p = own.find(name)) *slot = *p;
    }
  }
  const auto buffers = original.named_buffers(/*recurse=*/false);
  for (const auto& copy : clone.named_buffers(/*recurse=*/false)) {
    if (const at::Tensor* b = buffers.find(copy.key())) copy.value().set_data(*b);
  }
  const auto children = original.named_children();
  for (const auto& child : clone.named_children()) {
    if (const auto* twin = children.find(child.key())) share_tensors(*child.value(), **twin);
  }
}

// A clone can stand in for a layer when its forward will read the layer's own parameters: the
// registry knows where the layer keeps them, or it has none.
bool replaceable(torch::nn::Module& layer) {
  return has_parameter_slots(layer) || layer.named_parameters(/*recurse=*/true).is_empty();
}

// A clone of a sequence entry pointed at its tensors, or the entry itself when it cannot be replaced.
torch::nn::AnyModule replica_of(const torch::nn::AnyModule& any) {
  if (!replaceable(*any.ptr())) return any;
  try {
    torch::nn::AnyModule clone = any.clone();
    share_tensors(*clone.ptr(), *any.ptr());
    return clone;
  } catch (const std::exception&) {
    return any;  // not Cloneable
  }
}

// A copy of `module`'s structure for psg4j's own swaps: Sequentials rebuilt with the same names,
// replaceable layers cloned and pointed at the original's tensors. Other layers are shared as
// they are: no swap can target them (parameter_slots refuses them before anything is swapped).
std::shared_ptr<torch::nn::Module> replicate(const std::shared_ptr<torch::nn::Module>& module) {
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(module.get());
  if (sequential == nullptr) {
    if (!replaceable(*module)) return module;
    try {
      std::shared_ptr<torch::nn::Module> clone = module->clone();
      share_tensors(*clone, *module);
      return clone;
    } catch (const std::exception&) {
      return module;  // not Cloneable
    }
  }
  auto copy = std::make_shared<torch::nn::SequentialImpl>();
  // A layer may sit in the sequence twice (tied parameters): its names in order, and one clone.
  std::map<const torch::nn::Module*, std::vector<std::string>> names;
  for (const auto& child : sequential->named_children()) names[child.value().get()].push_back(child.key());
  std::map<const torch::nn::Module*, size_t> placed;
  std::map<const torch::nn::Module*, torch::nn::AnyModule> clones;
  for (torch::nn::AnyModule& any : *sequential) {
    const torch::nn::Module* original = any.ptr().get();
    const std::string name = names.at(original).at(placed[original]++);
    auto done = clones.find(original);
    if (done == clones.end()) done = clones.emplace(original, replica_of(any)).first;
    copy->push_back(name, done->second);
  }
  for (const auto& child : sequential->named_children()) {  // registered but not in the sequence
    if (placed.count(child.value().get()) == 0) copy->register_module(child.key(), replicate(child.value()));
  }
  return copy;
}

// The modules of a C++-frontend tree by dotted name, the root as "".
std::map<std::string, torch::nn::Module*> modules_by_name(torch::nn::Module& root) {
  std::map<std::string, torch::nn::Module*> out{{"", &root}};
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/false)) out[item.key()] = item.value().get();
  return out;
}

class FrontendModel final : public SlotModel<std::shared_ptr<torch::nn::Module>> {
 public:
  explicit FrontendModel(torch::nn::Module* module)
      : SlotModel([this] {
          PreservedCpuRandomState same_random_stream;
          return replicate(shared_handle());
        }),
        module_(module) {
    try {
      owner_ = module->shared_from_this();
    } catch (const std::bad_weak_ptr&) {
      // Not owned by a shared_ptr: the Java side keeps it alive.
    }
    warm_replicas();
  }

  TrainableParameters parameters() const override {
    NamedTensors all;
    for (const auto& p : module_->named_parameters(/*recurse=*/true)) all.emplace_back(p.key(), p.value());
    return tie_by_identity(only_trainable(std::move(all)));
  }

  std::string describe() const override { return "C++-frontend module " + module_->name(); }

  std::vector<ModelStep> steps() const override {
    std::shared_ptr<torch::nn::Module> replica = private_replica();
    follow(replica);
    return frontend_steps(*replica, "", replica);
  }

 private:
  void follow(std::shared_ptr<torch::nn::Module>& replica) const override {
    const std::map<std::string, torch::nn::Module*> own = modules_by_name(*module_);
    const std::map<std::string, torch::nn::Module*> copies = modules_by_name(*replica);
    // Parents first: train() also sets the children, which then get their own mode.
    for (const auto& [name, copy] : copies) {
      auto original = own.find(name);
      if (original != own.end() && original->second != copy && copy->is_training() != original->second->is_training()) {
        copy->train(original->second->is_training());
      }
    }
    const bool training = any_in_training(*module_);
    c10::NoGradGuard no_grad;
    for (const auto& [name, copy] : copies) {
      auto original = own.find(name);
      if (original == own.end() || original->second == copy) continue;
      const auto buffers = original->second->named_buffers(/*recurse=*/false);
      for (const auto& b : copy->named_buffers(/*recurse=*/false)) {
        const at::Tensor* mine = buffers.find(b.key());
        if (mine == nullptr) continue;
        const bool shared = b.value().is_alias_of(*mine);
        if (training && shared) b.value().set_data(outside_transforms([&] { return mine->clone(); }));
        if (!training && !shared) b.value().set_data(*mine);
      }
    }
  }

  void swap_in(std::shared_ptr<torch::nn::Module>& replica, const std::vector<std::pair<std::string, size_t>>& slots,
               const std::vector<at::Tensor>& parameters, SwappedParameters* swapped) const override {
    const std::map<std::string, at::Tensor*> members = parameter_slots_by_name(*replica);
    for (const auto& [name, k] : slots) {
      at::Tensor* slot = members.at(name);
      swapped->swap(*slot, [slot](const c10::IValue& t) { *slot = t.toTensor(); }, parameters[k]);
    }
  }

  at::Tensor run(std::shared_ptr<torch::nn::Module>& replica, const std::vector<at::Tensor>& inputs) const override {
    at::Tensor out;
    if (inputs.size() == 2 && run_two_input_layer(*replica, inputs[0], inputs[1], &out)) return out;
    if (inputs.size() != 1) {
      bad_input(describe() + " takes one input tensor but the batch has " +
                std::to_string(inputs.size()) + ": use Models.function(...) for multi-input models");
    }
    if (run_standard_layer(*replica, inputs[0], &out)) return out;
    bad_input("psg4j cannot run the forward of the C++-frontend module " + module_->name() +
              " natively: put it inside a Sequential of standard layers, or use "
              "Models.function(...) with a Java forward");
  }

  // The caller's module as a shared_ptr, one that does not own it where bytedeco made it without.
  std::shared_ptr<torch::nn::Module> shared_handle() const {
    return owner_ ? owner_ : std::shared_ptr<torch::nn::Module>(std::shared_ptr<torch::nn::Module>(), module_);
  }

  torch::nn::Module* module_;  // the caller's: read, never written
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

  // The callback sees every parameter under every name; the frozen ones keep their own values,
  // and a tied one gets its one replacement under each of its names.
  at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                const std::vector<at::Tensor>& trainable) const override {
    const TrainableParameters unique = parameters();
    require_one_per_parameter(trainable, unique.size(), describe());
    std::unordered_map<const c10::TensorImpl*, size_t> index;
    for (size_t k = 0; k < unique.size(); ++k) index.emplace(unique[k].tensor.unsafeGetTensorImpl(), k);
    std::vector<at::Tensor> all;
    for (const auto& entry : parameters_) {
      auto found = index.find(entry.second.unsafeGetTensorImpl());
      all.push_back(found == index.end() ? entry.second : trainable[found->second]);
    }
    return call(inputs, all);
  }

  TrainableParameters parameters() const override { return tie_by_identity(only_trainable(parameters_)); }
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

TrainableParameters tie_by_identity(const NamedTensors& all) {
  TrainableParameters tied;
  std::unordered_map<const c10::TensorImpl*, size_t> first;
  for (const auto& [name, tensor] : all) {
    auto [slot, inserted] = first.emplace(tensor.unsafeGetTensorImpl(), tied.size());
    if (inserted) {
      tied.push_back({name, tensor, {}});
    } else {
      tied[slot->second].aliases.push_back(name);
    }
  }
  return tied;
}

NamedTensors Model::trainable_parameters() const {
  NamedTensors out;
  for (TrainableParameter& p : parameters()) out.emplace_back(std::move(p.name), std::move(p.tensor));
  return out;
}

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

#include "psg4j/model.h"

#include "psg4j/error.h"
#include "psg4j/frontend_layers.h"
#include "psg4j/frontend_replica.h"
#include "psg4j/held_setting.h"
#include "psg4j/layer_specs.h"
#include "psg4j/replicas.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/nn.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
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

// The default CPU generator's state, held while replicas are made: cloning a C++-frontend layer
// re-initializes it randomly before its tensors are replaced, which must not move the caller's
// random stream. Held, not saved per clone, because a check's workers clone at once: a per-clone
// save on one thread could capture another's draws and put them back as the caller's state.
struct DefaultCpuRandomState {
  static at::Tensor save_and_hold() {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    return generator.get_state();
  }
  static void restore(const at::Tensor& state) {
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(state);
  }
};

class PreservedCpuRandomState {
 public:
  PreservedCpuRandomState() { HeldSetting<DefaultCpuRandomState>::acquire(); }
  ~PreservedCpuRandomState() { HeldSetting<DefaultCpuRandomState>::release(); }
  PreservedCpuRandomState(const PreservedCpuRandomState&) = delete;
  PreservedCpuRandomState& operator=(const PreservedCpuRandomState&) = delete;
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

  // One lease for the bound forward's lifetime, the replica following the model's mode once.
  std::unique_ptr<BoundForward> bind_forward() const final {
    class Bound final : public BoundForward {
     public:
      explicit Bound(const SlotModel* model) : model_(model), lease_(model->replicas_.acquire()) {
        model_->follow(lease_.get());
      }
      at::Tensor operator()(const std::vector<at::Tensor>& inputs) override {
        return model_->run(lease_.get(), inputs);
      }

     private:
      const SlotModel* model_;
      typename ReplicaPool<Replica>::Lease lease_;
    };
    return std::make_unique<Bound>(this);
  }

  // A replica of the bound forward's own, outside the pool, with the state put in for good: it is
  // dropped with the bound forward, never put back. Why not a leased replica, swapped and restored:
  // a buffer's data is replaced in place (its layer's member shares the tensor), and the autograd
  // graph of an output keeps that very tensor for its backward, which may run after the bound
  // forward has ended; restoring it would change what the backward reads.
  std::unique_ptr<BoundForward> bind_forward_with(const NamedTensors& state) const final {
    class Bound final : public BoundForward {
     public:
      Bound(const SlotModel* model, const NamedTensors& state) : model_(model), replica_(model->private_replica()) {
        model_->follow(replica_);
        model_->put_state(replica_, state);
      }
      at::Tensor operator()(const std::vector<at::Tensor>& inputs) override {
        return model_->run_swapped(replica_, inputs);
      }

     private:
      const SlotModel* model_;
      Replica replica_;
    };
    return std::make_unique<Bound>(this, state);
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

  bool visit_layer_chain(const LayerChainVisitor& visit) const final {
    auto lease = replicas_.acquire();
    follow(lease.get());
    std::vector<ChainLayer> chain;
    if (!layer_chain(lease.get(), &chain)) return false;
    visit(chain);
    return true;
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
  // Puts each tensor of `state` where the forward of `replica`, a private one, reads the one of that
  // name (state()), for good.
  virtual void put_state(Replica& replica, const NamedTensors& state) const = 0;

  // The replica's forward as a chain of standard layers, or false.
  virtual bool layer_chain(Replica& replica, std::vector<ChainLayer>* chain) const = 0;

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
// One clone at a time, process-wide: cloning defines the clone's class and methods in the module's
// compilation unit, which is not safe from two threads at once ("method ... already defined").
torch::jit::Module jit_replica(const torch::jit::Module& module) {
  static std::mutex cloning;
  std::lock_guard<std::mutex> one_at_a_time(cloning);
  return module.clone(/*inplace=*/true);
}

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

  // Every tensor attribute: parameters (trainable or frozen), buffers, and tensors a scripted
  // module keeps as plain attributes.
  NamedTensors state() const override {
    NamedTensors all;
    for (const auto& a : module_.named_attributes(/*recurse=*/true)) {
      if (a.value.isTensor()) all.emplace_back(a.name, a.value.toTensor());
    }
    return all;
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

  bool layer_chain(torch::jit::Module& replica, std::vector<ChainLayer>* chain) const override {
    return torchscript_layer_chain(replica, chain);
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

  void put_state(torch::jit::Module& replica, const NamedTensors& state) const override {
    for (const auto& [name, tensor] : state) {
      auto [owner, attribute] = owner_of(replica, name);
      if (!owner.hasattr(attribute) || !owner.attr(attribute).isTensor()) {
        bad_input(describe() + " has no tensor attribute '" + name + "' to replace");
      }
      owner.setattr(attribute, tensor);
    }
    for (const torch::jit::Module& m : replica.modules()) {
      if (auto fresh = fresh_flat_weights(m)) setter(m, "_flat_weights")(*fresh);
    }
  }

  static SwappedParameters::Setter setter(torch::jit::Module owner, const std::string& attribute) {
    return [owner, attribute](const c10::IValue& value) mutable { owner.setattr(attribute, value); };
  }

  // Scripted RNN/GRU/LSTM modules read their weights from the list _flat_weights, filled from
  // the parameters when the module was scripted: point it at the current (swapped) parameters.
  static void refresh_flat_weights(const torch::jit::Module& replica, SwappedParameters* swapped) {
    for (const torch::jit::Module& m : replica.modules()) {
      if (auto fresh = fresh_flat_weights(m)) swapped->swap(m.attr("_flat_weights"), setter(m, "_flat_weights"), *fresh);
    }
  }

  // `m`'s _flat_weights as its current attributes, or nothing where it has none.
  static std::optional<c10::IValue> fresh_flat_weights(const torch::jit::Module& m) {
    if (!m.hasattr("_flat_weights") || !m.hasattr("_flat_weights_names")) return std::nullopt;
    c10::impl::GenericList fresh = m.attr("_flat_weights").toList().copy();
    const c10::impl::GenericList names = m.attr("_flat_weights_names").toList();
    for (size_t k = 0; k < names.size() && k < fresh.size(); ++k) {
      const std::string name = names.get(k).toStringRef();
      if (m.hasattr(name)) fresh.set(k, m.attr(name));
    }
    return c10::IValue(fresh);
  }

  torch::jit::Module module_;  // the caller's: read, never written
};

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
    settle_layer_names(*module);  // before any replica is made, possibly by several threads at once
    warm_replicas();
  }

  TrainableParameters parameters() const override {
    NamedTensors all;
    for (const auto& p : module_->named_parameters(/*recurse=*/true)) all.emplace_back(p.key(), p.value());
    return tie_by_identity(only_trainable(std::move(all)));
  }

  std::string describe() const override { return "C++-frontend module " + module_->name(); }

  NamedTensors state() const override {
    NamedTensors all;
    for (const auto& p : module_->named_parameters(/*recurse=*/true)) all.emplace_back(p.key(), p.value());
    for (const auto& b : module_->named_buffers(/*recurse=*/true)) all.emplace_back(b.key(), b.value());
    return all;
  }

  std::vector<ModelStep> steps() const override {
    std::shared_ptr<torch::nn::Module> replica = private_replica();
    follow(replica);
    return frontend_steps(*replica, "", replica);
  }

 private:
  void follow(std::shared_ptr<torch::nn::Module>& replica) const override { follow_mode(*module_, *replica); }

  bool layer_chain(std::shared_ptr<torch::nn::Module>& replica, std::vector<ChainLayer>* chain) const override {
    return frontend_layer_chain(*replica, chain);
  }

  void swap_in(std::shared_ptr<torch::nn::Module>& replica, const std::vector<std::pair<std::string, size_t>>& slots,
               const std::vector<at::Tensor>& parameters, SwappedParameters* swapped) const override {
    const std::map<std::string, at::Tensor*> members = parameter_slots_by_name(*replica);
    for (const auto& [name, k] : slots) {
      at::Tensor* slot = members.at(name);
      swapped->swap(*slot, [slot](const c10::IValue& t) { *slot = t.toTensor(); }, parameters[k]);
    }
  }

  // Parameters go into the members the layers' forwards read (the registry's slots); a buffer's
  // data is replaced in the replica's own buffer tensor, which its layer's member shares. A buffer
  // the replica shares with the caller's module (a layer psg4j cannot replicate) is refused: the
  // caller's module is never written.
  void put_state(std::shared_ptr<torch::nn::Module>& replica, const NamedTensors& state) const override {
    const std::map<std::string, at::Tensor*> members = parameter_slots_by_name(*replica);
    const auto buffers = replica->named_buffers(/*recurse=*/true);
    const auto own_buffers = module_->named_buffers(/*recurse=*/true);
    c10::NoGradGuard no_grad;
    for (const auto& [name, tensor] : state) {
      if (auto member = members.find(name); member != members.end()) {
        *member->second = tensor;
        continue;
      }
      const at::Tensor* buffer = buffers.find(name);
      if (buffer == nullptr) bad_input(describe() + " has no parameter or buffer '" + name + "' that psg4j can replace");
      const at::Tensor* own = own_buffers.find(name);
      if (own != nullptr && own->unsafeGetTensorImpl() == buffer->unsafeGetTensorImpl()) {
        bad_input("the buffer '" + name + "' of " + describe() + " belongs to a layer psg4j cannot replicate, so it "
                  "cannot be replaced");
      }
      at::Tensor target = *buffer;
      target.set_data(tensor);
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
              " natively: put it inside a Sequential of standard layers, register its type with "
              "dev.psg4j.model.FrontendLayers.register(name, parameter slots, forward), or use "
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

  // Its parameters, trainable and frozen: what the callback is given. Tensors its closure holds
  // are its own.
  NamedTensors state() const override { return parameters_; }

  std::unique_ptr<BoundForward> bind_forward_with(const NamedTensors& state) const override {
    std::vector<at::Tensor> all;
    for (const auto& entry : parameters_) all.push_back(entry.second);
    for (const auto& [name, tensor] : state) {
      auto found = std::find_if(parameters_.begin(), parameters_.end(), [&](const auto& e) { return e.first == name; });
      if (found == parameters_.end()) bad_input(describe() + " has no parameter '" + name + "' to replace");
      all[static_cast<size_t>(found - parameters_.begin())] = tensor;
    }
    class Bound final : public BoundForward {
     public:
      Bound(const FunctionModel* model, std::vector<at::Tensor> all) : model_(model), all_(std::move(all)) {}
      at::Tensor operator()(const std::vector<at::Tensor>& inputs) override { return model_->call(inputs, all_); }

     private:
      const FunctionModel* model_;
      std::vector<at::Tensor> all_;
    };
    return std::make_unique<Bound>(this, std::move(all));
  }

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

std::unique_ptr<BoundForward> Model::bind_forward() const {
  class Unbound final : public BoundForward {
   public:
    explicit Unbound(const Model* model) : model_(model) {}
    at::Tensor operator()(const std::vector<at::Tensor>& inputs) override { return model_->forward(inputs); }

   private:
    const Model* model_;
  };
  return std::make_unique<Unbound>(this);
}

std::unique_ptr<BoundForward> Model::bind_forward_with(const NamedTensors& state) const {
  if (state.empty()) return bind_forward();
  bad_input("psg4j cannot replace the tensors " + describe() + " reads");
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

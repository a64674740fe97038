#include "psg4j/frontend_replica.h"

#include "psg4j/frontend_layers.h"
#include "psg4j/replicas.h"

#include <torch/nn.h>

namespace psg4j {

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

namespace {

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

// A clone can stand in for a module when its forward will read the module's own parameters: every
// module of its tree that holds parameters of its own keeps them in members the registry knows
// (a layer whose parameters sit in its children, such as TransformerEncoderLayer, included).
bool replaceable(torch::nn::Module& module) {
  if (!module.named_parameters(/*recurse=*/false).is_empty() && !has_parameter_slots(module)) return false;
  for (const auto& child : module.children()) {
    if (!replaceable(*child)) return false;
  }
  return true;
}

// Note [Replicas of the whole tree]
// A swap writes the slots of every module of the replica that holds a trainable parameter, at any
// depth: a module the replica shares with the caller's tree puts the caller's own layers below
// it within the swap's reach (the caller's forward then reads an engine's wrapped tensors). So
// every module on the way to a parameter is the replica's own: a Sequential is rebuilt entry by
// entry, a replaceable module cloned (its children with it) and pointed at the caller's tensors,
// a module that cannot clone itself (a container built in Java) rebuilt as a plain Module over
// replicas of its children. Only a module a swap cannot target is shared: one holding a parameter
// in a member the registry does not know, which parameter_slots refuses before any slot is written.
// A module that sits in the tree twice (tied parameters) has one replica, at both places.
class TreeReplica {
 public:
  std::shared_ptr<torch::nn::Module> of(const std::shared_ptr<torch::nn::Module>& module) {
    auto done = replicas_.find(module.get());
    if (done != replicas_.end()) return done->second;
    std::shared_ptr<torch::nn::Module> replica = make(module);
    replicas_.emplace(module.get(), replica);
    return replica;
  }

 private:
  std::shared_ptr<torch::nn::Module> make(const std::shared_ptr<torch::nn::Module>& module) {
    if (auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(module.get())) return rebuilt(*sequential);
    if (auto own = registry_replica(*module)) return own;  // a type that cannot clone itself
    if (!replaceable(*module)) return module;
    std::shared_ptr<torch::nn::Module> clone;
    try {
      clone = module->clone();
    } catch (const std::exception&) {
      return rebuilt_container(*module);  // not Cloneable: a plain container
    }
    share_tensors(*clone, *module);
    return clone;
  }

  // A clone of a sequence entry pointed at its tensors, or the entry itself when it cannot be
  // replaced (AnyModule keeps the entry's type, so the clone runs the entry's own forward).
  torch::nn::AnyModule entry(const torch::nn::AnyModule& any) {
    const torch::nn::Module* original = any.ptr().get();
    auto done = entries_.find(original);
    if (done != entries_.end()) return done->second;
    torch::nn::AnyModule replica = any;
    if (replaceable(*any.ptr())) {
      try {
        torch::nn::AnyModule clone = any.clone();
        share_tensors(*clone.ptr(), *any.ptr());
        replica = clone;
      } catch (const std::exception&) {
        // not Cloneable: shared, as a swap cannot target it (a replaceable AnyModule entry is a
        // layer type of LibTorch's or the registry's, which clone)
      }
    }
    entries_.emplace(original, replica);
    replicas_.emplace(original, replica.ptr());  // where the same module is registered elsewhere
    return replica;
  }

  std::shared_ptr<torch::nn::Module> rebuilt(torch::nn::SequentialImpl& sequential) {
    auto copy = std::make_shared<torch::nn::SequentialImpl>();
    // A layer may sit in the sequence twice (tied parameters): its names in order, and one clone.
    std::map<const torch::nn::Module*, std::vector<std::string>> names;
    for (const auto& child : sequential.named_children()) names[child.value().get()].push_back(child.key());
    std::map<const torch::nn::Module*, size_t> placed;
    for (torch::nn::AnyModule& any : sequential) {
      const torch::nn::Module* original = any.ptr().get();
      copy->push_back(names.at(original).at(placed[original]++), entry(any));
    }
    for (const auto& child : sequential.named_children()) {  // registered but not in the sequence
      if (placed.count(child.value().get()) == 0) copy->register_module(child.key(), of(child.value()));
    }
    return copy;
  }

  // A module without a forward psg4j runs and without parameters of its own: a plain Module of
  // the same name over replicas of its children, with aliases of its buffers (follow_mode gives
  // them copies in train mode).
  std::shared_ptr<torch::nn::Module> rebuilt_container(torch::nn::Module& container) {
    auto copy = std::make_shared<torch::nn::Module>(container.name());
    for (const auto& buffer : container.named_buffers(/*recurse=*/false)) {
      copy->register_buffer(buffer.key(), outside_transforms([&] { return buffer.value().detach(); }));
    }
    for (const auto& child : container.named_children()) copy->register_module(child.key(), of(child.value()));
    return copy;
  }

  std::map<const torch::nn::Module*, std::shared_ptr<torch::nn::Module>> replicas_;
  std::map<const torch::nn::Module*, torch::nn::AnyModule> entries_;
};

}  // namespace

std::shared_ptr<torch::nn::Module> replicate(const std::shared_ptr<torch::nn::Module>& module) {
  return TreeReplica().of(module);
}

namespace {

// The modules of a C++-frontend tree by dotted name, the root as "".
std::map<std::string, torch::nn::Module*> modules_by_name(torch::nn::Module& root) {
  std::map<std::string, torch::nn::Module*> out{{"", &root}};
  for (const auto& item : root.named_modules(/*name_prefix=*/"", /*include_self=*/false)) out[item.key()] = item.value().get();
  return out;
}

}  // namespace

void follow_mode(torch::nn::Module& original, torch::nn::Module& replica) {
  const std::map<std::string, torch::nn::Module*> own = modules_by_name(original);
  const std::map<std::string, torch::nn::Module*> copies = modules_by_name(replica);
  // Parents first (a prefix sorts first): train() also sets the children, which then get theirs.
  for (const auto& [name, copy] : copies) {
    auto twin = own.find(name);
    if (twin != own.end() && twin->second != copy && copy->is_training() != twin->second->is_training()) {
      copy->train(twin->second->is_training());
    }
  }
  const bool training = any_in_training(original);
  c10::NoGradGuard no_grad;
  for (const auto& [name, copy] : copies) {
    auto twin = own.find(name);
    if (twin == own.end() || twin->second == copy) continue;
    const auto buffers = twin->second->named_buffers(/*recurse=*/false);
    for (const auto& b : copy->named_buffers(/*recurse=*/false)) {
      const at::Tensor* mine = buffers.find(b.key());
      if (mine == nullptr) continue;
      const bool shared = b.value().is_alias_of(*mine);
      if (training && shared) b.value().set_data(outside_transforms([&] { return mine->clone(); }));
      if (!training && !shared) b.value().set_data(*mine);
    }
  }
}

}  // namespace psg4j

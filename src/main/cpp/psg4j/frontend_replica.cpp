#include "psg4j/frontend_replica.h"

#include "psg4j/frontend_layers.h"
#include "psg4j/replicas.h"

#include <torch/nn.h>

namespace psg4j {
namespace {

}  // namespace

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

}  // namespace

std::shared_ptr<torch::nn::Module> replicate(const std::shared_ptr<torch::nn::Module>& module) {
  auto* sequential = dynamic_cast<torch::nn::SequentialImpl*>(module.get());
  if (sequential == nullptr) {
    if (auto own = registry_replica(*module)) return own;  // a type that cannot clone itself
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

// Replicas of C++-frontend modules (see replicas.h): a copy of a module's structure whose forward
// reads the caller's own parameter tensors, for psg4j's own parameter swaps.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace psg4j {

// A replica of the whole tree, at any depth (Note [Replicas of the whole tree]): Sequentials
// rebuilt with the same names, replaceable modules (the registry knows where every module of
// theirs keeps its parameters, or they have none) cloned and pointed at the original's tensors,
// containers that cannot clone themselves rebuilt over replicas of their children; a module
// holding parameters where the registry does not know is shared as it is: no swap can target it
// (parameter_slots refuses it first).
std::shared_ptr<torch::nn::Module> replicate(const std::shared_ptr<torch::nn::Module>& module);

// Brings `replica` to `original`'s current train/eval mode, with buffers sharing `original`'s in
// eval mode and copies of the replica's own in train mode (where forwards write them).
void follow_mode(torch::nn::Module& original, torch::nn::Module& replica);

// Full parameter name -> the member of `module` that the owning layer's forward reads it from.
std::map<std::string, at::Tensor*> parameter_slots_by_name(torch::nn::Module& module);

}  // namespace psg4j

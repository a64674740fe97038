// The layer chains of C++-frontend and TorchScript modules (layer_chain.h): a Sequential's
// children in order, nested Sequentials flattened, each described in torch.nn's terms.
#pragma once

#include "psg4j/layer_chain.h"

#include <memory>

namespace torch {
namespace jit {
struct Module;
}
namespace nn {
class Module;
}
}  // namespace torch

namespace psg4j {

// False when `module` is neither a Sequential nor a standard layer. The chain's run functions use
// `module`: they are valid while it lives and is not used by another thread.
bool frontend_layer_chain(torch::nn::Module& module, std::vector<ChainLayer>* chain);

// False unless `module` is a scripted torch.nn.Sequential.
bool torchscript_layer_chain(const torch::jit::Module& module, std::vector<ChainLayer>* chain);

}  // namespace psg4j

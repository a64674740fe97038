// A model's forward seen as a chain of standard layers (a Sequential's children, in order), each
// described in torch.nn's terms, for engines that compute per-sample gradients layer by layer
// (per_sample_rules.h). Built from C++-frontend and TorchScript modules (layer_specs.cpp).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace psg4j {

// What a per-layer rule needs to know of a layer. Only the fields of the layer's kind are set.
struct LayerSpec {
  std::string kind;  // torch.nn's class name ("Linear", "Conv2d", "ReLU", ...); "" when unknown
  std::string name;  // dotted path in the model ("0", "encoder.1")
  std::vector<std::pair<std::string, at::Tensor>> parameters;  // own ones, local names; defined only
  bool training = false;
  bool inplace = false;  // an activation or dropout that writes its input

  // Conv1d / Conv2d / Conv3d: per spatial dimension. exact_padding is false for padding 'same' or a
  // padding_mode other than zeros (padding the rules do not rebuild).
  std::vector<int64_t> stride, padding, dilation;
  int64_t groups = 1;
  bool exact_padding = true;

  // Embedding. plain_lookup is false with max_norm (the forward renormalizes the weight in
  // place), scale_grad_by_freq or sparse gradients.
  std::optional<int64_t> padding_idx;
  bool plain_lookup = true;

  // LayerNorm.
  std::vector<int64_t> normalized_shape;
  double eps = 1e-5;

  // Flatten.
  int64_t start_dim = 1;
};

// One layer of the chain and how to run it on a batch.
struct ChainLayer {
  LayerSpec spec;
  std::function<at::Tensor(const at::Tensor&)> run;
};

using LayerChainVisitor = std::function<void(const std::vector<ChainLayer>&)>;

}  // namespace psg4j

// Per-sample gradient rules, one per layer kind (as Opacus's register_grad_sampler or functorch's
// batching rules): from a layer's input and the gradient of its output, both [B, ...] from one
// batched forward and backward, the exact per-sample gradients of its parameters, written into
// the caller's buffers. The cheapest exact route per kind: an outer product or bmm of activations
// and backprops for Linear, one convolution with the samples as groups for Conv, an index_add
// into [B, V, D] for Embedding.
#pragma once

#include "psg4j/layer_chain.h"

#include <map>
#include <string>

namespace psg4j {

// Buffers [B, *shape] by the layer's local parameter name ("weight", "bias"); only the
// parameters whose gradients are wanted.
using RuleOutputs = std::map<std::string, at::Tensor>;

struct PerSampleRule {
  // Whether the rule is exact for this layer's options (e.g. Conv with zero padding only).
  bool (*supports)(const LayerSpec& layer);
  // Writes every buffer of `out`. input: what the layer got; grad_output: d loss_i / d output.
  void (*gradients)(const LayerSpec& layer, const at::Tensor& input, const at::Tensor& grad_output,
                    const RuleOutputs& out);
};

// The rule for `layer`'s kind when it has one and supports the layer's options, else null.
const PerSampleRule* rule_for(const LayerSpec& layer);

// Whether `layer` has no parameters and its batched forward is the per-sample forwards side by
// side, bit for bit (activations, pooling, Flatten from dimension 1, dropout in eval mode),
// and it writes none of its inputs.
bool is_per_sample_passthrough(const LayerSpec& layer);

}  // namespace psg4j

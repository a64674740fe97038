#include "psg4j/frontend_layers.h"

#include "psg4j/error.h"

#include <torch/nn.h>

#include <tuple>
#include <type_traits>

namespace psg4j {
namespace {

namespace nn = torch::nn;

// Layers whose forward maps one tensor to one tensor.
template <typename Impl>
bool run_if(nn::Module& module, const at::Tensor& x, at::Tensor* out) {
  auto* layer = dynamic_cast<Impl*>(&module);
  if (layer == nullptr) return false;
  *out = layer->forward(x);
  return true;
}

// The zero initial state of a recurrent layer, made from the input so that under vmap it is
// batched like the input. ATen's GRU and RNN kernels write batched values into an unbatched
// default state and fail there (torch.func fails the same way); with this state they run.
at::Tensor zero_state(const nn::detail::RNNOptionsBase& options, const at::Tensor& x, int64_t size) {
  std::vector<int64_t> shape{options.num_layers() * (options.bidirectional() ? 2 : 1)};
  if (x.dim() == 3) shape.push_back(x.size(options.batch_first() ? 0 : 1));
  shape.push_back(size);
  return at::zeros(shape, x.options()) + at::zeros_like(x).sum();
}

// RNN, LSTM and GRU return (output, hidden state); the output sequence is what a loss reads.
template <typename Impl>
bool run_recurrent_if(nn::Module& module, const at::Tensor& x, at::Tensor* out) {
  auto* layer = dynamic_cast<Impl*>(&module);
  if (layer == nullptr) return false;
  const nn::detail::RNNOptionsBase& options = layer->options_base;
  if constexpr (std::is_same_v<Impl, nn::LSTMImpl>) {
    const int64_t h_size = options.proj_size() > 0 ? options.proj_size() : options.hidden_size();
    *out = std::get<0>(layer->forward(
        x, std::make_tuple(zero_state(options, x, h_size), zero_state(options, x, options.hidden_size()))));
  } else {
    *out = std::get<0>(layer->forward(x, zero_state(options, x, options.hidden_size())));
  }
  return true;
}

// Self-attention. With packed projections the module's forward compares query and key with
// torch::equal to pick its path, and vmap cannot batch aten::equal; the same projections given
// as three slices of the packed weight take the path that needs no comparison.
bool run_self_attention_if(nn::Module& module, const at::Tensor& x, at::Tensor* out) {
  auto* layer = dynamic_cast<nn::MultiheadAttentionImpl*>(&module);
  if (layer == nullptr) return false;
  if (!layer->_qkv_same_embed_dim) {
    *out = std::get<0>(layer->forward(x, x, x, /*key_padding_mask=*/{}, /*need_weights=*/false));
    return true;
  }
  const auto& options = layer->options;
  const int64_t e = options.embed_dim();
  const at::Tensor& packed = layer->in_proj_weight;
  *out = std::get<0>(torch::nn::functional::detail::multi_head_attention_forward(
      x, x, x, e, options.num_heads(), packed, layer->in_proj_bias, layer->bias_k, layer->bias_v,
      options.add_zero_attn(), options.dropout(), layer->out_proj->weight, layer->out_proj->bias,
      layer->is_training(), /*key_padding_mask=*/{}, /*need_weights=*/false, /*attn_mask=*/{},
      /*use_separate_proj_weight=*/true, packed.slice(0, 0, e), packed.slice(0, e, 2 * e),
      packed.slice(0, 2 * e)));
  return true;
}

bool run_sequential_if(nn::Module& module, const at::Tensor& x, at::Tensor* out) {
  auto* sequential = dynamic_cast<nn::SequentialImpl*>(&module);
  if (sequential == nullptr) return false;
  at::Tensor h = x;
  for (auto& child : *sequential) {
    at::Tensor next;
    // Layers with tuple outputs go through the registry; the rest (activations, pooling,
    // Flatten, Dropout, ...) through their own AnyModule forward.
    h = run_standard_layer(*child.ptr(), h, &next) ? next : child.forward<at::Tensor>(h);
  }
  *out = h;
  return true;
}

template <typename Impl>
bool weight_and_bias_if(nn::Module& module, ParameterSlots* slots) {
  auto* layer = dynamic_cast<Impl*>(&module);
  if (layer == nullptr) return false;
  *slots = {{"weight", &layer->weight}, {"bias", &layer->bias}};
  return true;
}

template <typename Impl>
bool weight_if(nn::Module& module, ParameterSlots* slots) {
  auto* layer = dynamic_cast<Impl*>(&module);
  if (layer == nullptr) return false;
  *slots = {{"weight", &layer->weight}};
  return true;
}

// The recurrent forwards read their weights from the protected flat_weights_ list, not from the
// registered parameters. A pointer to member taken through a subclass reaches it legally.
template <typename Impl>
struct RecurrentWeights : nn::detail::RNNImplBase<Impl> {
  static ParameterSlots of(Impl& layer) {
    auto& names = layer.*(&RecurrentWeights::flat_weights_names_);
    auto& weights = layer.*(&RecurrentWeights::flat_weights_);
    ParameterSlots slots;
    for (size_t k = 0; k < names.size() && k < weights.size(); ++k) slots.emplace_back(names[k], &weights[k]);
    return slots;
  }
};

template <typename Impl>
bool recurrent_if(nn::Module& module, ParameterSlots* slots) {
  auto* layer = dynamic_cast<Impl*>(&module);
  if (layer == nullptr) return false;
  *slots = RecurrentWeights<Impl>::of(*layer);
  return true;
}

// out_proj is a child Linear and has its own slots.
bool attention_if(nn::Module& module, ParameterSlots* slots) {
  auto* layer = dynamic_cast<nn::MultiheadAttentionImpl*>(&module);
  if (layer == nullptr) return false;
  *slots = {{"in_proj_weight", &layer->in_proj_weight}, {"in_proj_bias", &layer->in_proj_bias},
            {"bias_k", &layer->bias_k},                 {"bias_v", &layer->bias_v},
            {"q_proj_weight", &layer->q_proj_weight},   {"k_proj_weight", &layer->k_proj_weight},
            {"v_proj_weight", &layer->v_proj_weight}};
  return true;
}

bool known_slots(nn::Module& m, ParameterSlots* s) {
  return weight_and_bias_if<nn::LinearImpl>(m, s) || weight_and_bias_if<nn::BilinearImpl>(m, s) ||
         weight_and_bias_if<nn::Conv1dImpl>(m, s) || weight_and_bias_if<nn::Conv2dImpl>(m, s) ||
         weight_and_bias_if<nn::Conv3dImpl>(m, s) ||
         weight_and_bias_if<nn::ConvTranspose1dImpl>(m, s) ||
         weight_and_bias_if<nn::ConvTranspose2dImpl>(m, s) ||
         weight_and_bias_if<nn::ConvTranspose3dImpl>(m, s) ||
         weight_if<nn::EmbeddingImpl>(m, s) || weight_if<nn::EmbeddingBagImpl>(m, s) ||
         weight_and_bias_if<nn::LayerNormImpl>(m, s) || weight_and_bias_if<nn::GroupNormImpl>(m, s) ||
         weight_and_bias_if<nn::InstanceNorm1dImpl>(m, s) ||
         weight_and_bias_if<nn::InstanceNorm2dImpl>(m, s) ||
         weight_and_bias_if<nn::InstanceNorm3dImpl>(m, s) ||
         weight_and_bias_if<nn::BatchNorm1dImpl>(m, s) ||
         weight_and_bias_if<nn::BatchNorm2dImpl>(m, s) ||
         weight_and_bias_if<nn::BatchNorm3dImpl>(m, s) || recurrent_if<nn::RNNImpl>(m, s) ||
         recurrent_if<nn::LSTMImpl>(m, s) || recurrent_if<nn::GRUImpl>(m, s) || attention_if(m, s);
}

}  // namespace

bool run_standard_layer(nn::Module& m, const at::Tensor& x, at::Tensor* out) {
  return run_sequential_if(m, x, out) || run_if<nn::LinearImpl>(m, x, out) ||
         run_if<nn::Conv1dImpl>(m, x, out) || run_if<nn::Conv2dImpl>(m, x, out) ||
         run_if<nn::Conv3dImpl>(m, x, out) || run_if<nn::ConvTranspose1dImpl>(m, x, out) ||
         run_if<nn::ConvTranspose2dImpl>(m, x, out) || run_if<nn::ConvTranspose3dImpl>(m, x, out) ||
         run_if<nn::EmbeddingImpl>(m, x, out) || run_if<nn::EmbeddingBagImpl>(m, x, out) ||
         run_if<nn::LayerNormImpl>(m, x, out) || run_if<nn::GroupNormImpl>(m, x, out) ||
         run_if<nn::InstanceNorm1dImpl>(m, x, out) || run_if<nn::InstanceNorm2dImpl>(m, x, out) ||
         run_if<nn::InstanceNorm3dImpl>(m, x, out) || run_if<nn::BatchNorm1dImpl>(m, x, out) ||
         run_if<nn::BatchNorm2dImpl>(m, x, out) || run_if<nn::BatchNorm3dImpl>(m, x, out) ||
         run_recurrent_if<nn::RNNImpl>(m, x, out) || run_recurrent_if<nn::LSTMImpl>(m, x, out) ||
         run_recurrent_if<nn::GRUImpl>(m, x, out) || run_self_attention_if(m, x, out);
}

bool run_two_input_layer(nn::Module& module, const at::Tensor& x1, const at::Tensor& x2,
                         at::Tensor* out) {
  auto* layer = dynamic_cast<nn::BilinearImpl*>(&module);
  if (layer == nullptr) return false;
  *out = layer->forward(x1, x2);
  return true;
}

bool has_parameter_slots(nn::Module& layer) {
  ParameterSlots ignored;
  return known_slots(layer, &ignored);
}

ParameterSlots parameter_slots(nn::Module& layer) {
  ParameterSlots all;
  if (!known_slots(layer, &all)) {
    bad_input("psg4j does not know where the C++-frontend layer " + layer.name() +
              " keeps its parameters, so the vmap engine cannot swap them: use the microbatch "
              "engine (Engines.microbatch(), --engine microbatch), or Models.function(...) with a "
              "forward that uses the parameters it is given");
  }
  // Only the registered (defined) parameters: a Linear without bias has no "bias" to swap.
  ParameterSlots registered;
  for (const auto& p : layer.named_parameters(/*recurse=*/false)) {
    bool found = false;
    for (const auto& slot : all) {
      if (slot.first == p.key()) {
        registered.push_back(slot);
        found = true;
      }
    }
    if (!found) {
      bad_input("the C++-frontend layer " + layer.name() + " has a parameter '" + p.key() +
                "' that its forward does not read from a known member, so the vmap engine cannot "
                "swap it: use the microbatch engine (Engines.microbatch(), --engine microbatch)");
    }
  }
  return registered;
}

}  // namespace psg4j

#include "psg4j/frontend_layers.h"

#include "psg4j/custom_layers.h"
#include "psg4j/error.h"

#include <torch/nn.h>

#include <tuple>
#include <type_traits>
#include <variant>

namespace psg4j {
namespace {

namespace nn = torch::nn;

// ---- How a type runs

template <typename Impl>
bool is(nn::Module& module) {
  return dynamic_cast<Impl*>(&module) != nullptr;
}

template <typename Impl>
at::Tensor forward_of(nn::Module& module, const at::Tensor& x) {
  return dynamic_cast<Impl&>(module).forward(x);
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
at::Tensor recurrent_forward(nn::Module& module, const at::Tensor& x) {
  auto& layer = dynamic_cast<Impl&>(module);
  const nn::detail::RNNOptionsBase& options = layer.options_base;
  if constexpr (std::is_same_v<Impl, nn::LSTMImpl>) {
    const int64_t h_size = options.proj_size() > 0 ? options.proj_size() : options.hidden_size();
    return std::get<0>(layer.forward(
        x, std::make_tuple(zero_state(options, x, h_size), zero_state(options, x, options.hidden_size()))));
  } else {
    return std::get<0>(layer.forward(x, zero_state(options, x, options.hidden_size())));
  }
}

// Self-attention. With packed projections the module's forward compares query and key with
// torch::equal to pick its path, and vmap cannot batch aten::equal; the same projections given
// as three slices of the packed weight take the path that needs no comparison.
at::Tensor self_attention_forward(nn::Module& module, const at::Tensor& x) {
  auto& layer = dynamic_cast<nn::MultiheadAttentionImpl&>(module);
  if (!layer._qkv_same_embed_dim) {
    return std::get<0>(layer.forward(x, x, x, /*key_padding_mask=*/{}, /*need_weights=*/false));
  }
  const auto& options = layer.options;
  const int64_t e = options.embed_dim();
  const at::Tensor& packed = layer.in_proj_weight;
  return std::get<0>(torch::nn::functional::detail::multi_head_attention_forward(
      x, x, x, e, options.num_heads(), packed, layer.in_proj_bias, layer.bias_k, layer.bias_v,
      options.add_zero_attn(), options.dropout(), layer.out_proj->weight, layer.out_proj->bias,
      layer.is_training(), /*key_padding_mask=*/{}, /*need_weights=*/false, /*attn_mask=*/{},
      /*use_separate_proj_weight=*/true, packed.slice(0, 0, e), packed.slice(0, e, 2 * e),
      packed.slice(0, 2 * e)));
}

at::Tensor sequential_forward(nn::Module& module, const at::Tensor& x) {
  at::Tensor h = x;
  for (auto& child : dynamic_cast<nn::SequentialImpl&>(module)) {
    at::Tensor next;
    // Registered layers (tuple outputs among them) through the registry; the rest (GELU,
    // pooling, ...) through their own AnyModule forward.
    h = run_standard_layer(*child.ptr(), h, &next) ? next : child.forward<at::Tensor>(h);
  }
  return h;
}

at::Tensor bilinear_forward(nn::Module& module, const at::Tensor& x1, const at::Tensor& x2) {
  return dynamic_cast<nn::BilinearImpl&>(module).forward(x1, x2);
}

// ---- Where a type keeps its parameters

template <typename Impl>
ParameterSlots weight_and_bias_slots(nn::Module& module) {
  auto& layer = dynamic_cast<Impl&>(module);
  return {{"weight", &layer.weight}, {"bias", &layer.bias}};
}

template <typename Impl>
ParameterSlots weight_slot(nn::Module& module) {
  return {{"weight", &dynamic_cast<Impl&>(module).weight}};
}

// The recurrent forwards read their weights from the protected flat_weights_ list, not from the
// registered parameters. A pointer to member taken through a subclass reaches it legally.
template <typename Impl>
struct RecurrentWeights : nn::detail::RNNImplBase<Impl> {
  static ParameterSlots of(nn::Module& module) {
    auto& layer = dynamic_cast<Impl&>(module);
    auto& names = layer.*(&RecurrentWeights::flat_weights_names_);
    auto& weights = layer.*(&RecurrentWeights::flat_weights_);
    ParameterSlots slots;
    for (size_t k = 0; k < names.size() && k < weights.size(); ++k) slots.emplace_back(names[k], &weights[k]);
    return slots;
  }
};

// out_proj is a child Linear and has its own slots.
ParameterSlots attention_slots(nn::Module& module) {
  auto& layer = dynamic_cast<nn::MultiheadAttentionImpl&>(module);
  return {{"in_proj_weight", &layer.in_proj_weight}, {"in_proj_bias", &layer.in_proj_bias},
          {"bias_k", &layer.bias_k},                 {"bias_v", &layer.bias_v},
          {"q_proj_weight", &layer.q_proj_weight},   {"k_proj_weight", &layer.k_proj_weight},
          {"v_proj_weight", &layer.v_proj_weight}};
}

// ---- The options the per-layer rules read

template <size_t D>
std::vector<int64_t> as_vector(const torch::ExpandingArray<D>& array) {
  return std::vector<int64_t>(array->begin(), array->end());
}

template <typename Impl, size_t D>
void conv_options(nn::Module& module, LayerSpec* spec) {
  const auto& options = dynamic_cast<Impl&>(module).options;
  spec->stride = as_vector<D>(options.stride());
  spec->dilation = as_vector<D>(options.dilation());
  spec->groups = options.groups();
  if (const auto* explicit_padding = std::get_if<torch::ExpandingArray<D>>(&options.padding())) {
    spec->padding = as_vector<D>(*explicit_padding);
  } else {
    spec->padding = std::vector<int64_t>(D, 0);
    spec->exact_padding = std::holds_alternative<torch::enumtype::kValid>(options.padding());
  }
  spec->exact_padding = spec->exact_padding && std::holds_alternative<torch::enumtype::kZeros>(options.padding_mode());
}

void embedding_options(nn::Module& module, LayerSpec* spec) {
  const auto& options = dynamic_cast<nn::EmbeddingImpl&>(module).options;
  spec->padding_idx = options.padding_idx();
  spec->plain_lookup = !options.max_norm() && !options.scale_grad_by_freq() && !options.sparse();
}

void layer_norm_options(nn::Module& module, LayerSpec* spec) {
  const auto& options = dynamic_cast<nn::LayerNormImpl&>(module).options;
  spec->normalized_shape = options.normalized_shape();
  spec->eps = options.eps();
}

void flatten_options(nn::Module& module, LayerSpec* spec) {
  spec->start_dim = dynamic_cast<nn::FlattenImpl&>(module).options.start_dim();
}

template <typename Impl>
void inplace_options(nn::Module& module, LayerSpec* spec) {
  spec->inplace = dynamic_cast<Impl&>(module).options.inplace();
}

// ---- Registration helpers: one call per type in the table below

using RunOf = std::function<at::Tensor(nn::Module&, const at::Tensor&)>;
using SlotsOf = std::function<ParameterSlots(nn::Module&)>;
using OptionsOf = std::function<void(nn::Module&, LayerSpec*)>;

template <typename Impl>
LayerType entry(std::string name, RunOf run, SlotsOf slots, OptionsOf options = {}) {
  LayerType type;
  type.name = std::move(name);
  type.matches = is<Impl>;
  type.run = std::move(run);
  type.slots = std::move(slots);
  type.options = std::move(options);
  return type;
}

template <typename Impl>
LayerType with_weight_and_bias(std::string name, OptionsOf options = {}) {
  return entry<Impl>(std::move(name), forward_of<Impl>, weight_and_bias_slots<Impl>, std::move(options));
}

template <typename Impl>
LayerType with_weight(std::string name, OptionsOf options = {}) {
  return entry<Impl>(std::move(name), forward_of<Impl>, weight_slot<Impl>, std::move(options));
}

template <typename Impl>
LayerType recurrent(std::string name) {
  return entry<Impl>(std::move(name), recurrent_forward<Impl>, RecurrentWeights<Impl>::of);
}

// Parameter-free layers registered for the options the rules read of them; no slots.
template <typename Impl>
LayerType parameter_free(std::string name, OptionsOf options) {
  return entry<Impl>(std::move(name), forward_of<Impl>, /*slots=*/{}, std::move(options));
}

LayerType sequential() {
  return entry<nn::SequentialImpl>("Sequential", sequential_forward, /*slots=*/{});  // keeps none of its own
}

LayerType bilinear() {
  LayerType type = entry<nn::BilinearImpl>("Bilinear", /*run=*/{}, weight_and_bias_slots<nn::BilinearImpl>);
  type.run_two = bilinear_forward;  // two inputs only
  return type;
}

LayerType self_attention() {
  return entry<nn::MultiheadAttentionImpl>("MultiheadAttention", self_attention_forward, attention_slots);
}

// bytedeco's standard layers: one registration per type.
const std::vector<LayerType>& builtin_layer_types() {
  static const std::vector<LayerType> types = {
      sequential(),
      with_weight_and_bias<nn::LinearImpl>("Linear"),
      bilinear(),
      with_weight_and_bias<nn::Conv1dImpl>("Conv1d", conv_options<nn::Conv1dImpl, 1>),
      with_weight_and_bias<nn::Conv2dImpl>("Conv2d", conv_options<nn::Conv2dImpl, 2>),
      with_weight_and_bias<nn::Conv3dImpl>("Conv3d", conv_options<nn::Conv3dImpl, 3>),
      with_weight_and_bias<nn::ConvTranspose1dImpl>("ConvTranspose1d"),
      with_weight_and_bias<nn::ConvTranspose2dImpl>("ConvTranspose2d"),
      with_weight_and_bias<nn::ConvTranspose3dImpl>("ConvTranspose3d"),
      with_weight<nn::EmbeddingImpl>("Embedding", embedding_options),
      with_weight<nn::EmbeddingBagImpl>("EmbeddingBag"),
      with_weight_and_bias<nn::LayerNormImpl>("LayerNorm", layer_norm_options),
      with_weight_and_bias<nn::GroupNormImpl>("GroupNorm"),
      with_weight_and_bias<nn::InstanceNorm1dImpl>("InstanceNorm1d"),
      with_weight_and_bias<nn::InstanceNorm2dImpl>("InstanceNorm2d"),
      with_weight_and_bias<nn::InstanceNorm3dImpl>("InstanceNorm3d"),
      with_weight_and_bias<nn::BatchNorm1dImpl>("BatchNorm1d"),
      with_weight_and_bias<nn::BatchNorm2dImpl>("BatchNorm2d"),
      with_weight_and_bias<nn::BatchNorm3dImpl>("BatchNorm3d"),
      recurrent<nn::RNNImpl>("RNN"),
      recurrent<nn::LSTMImpl>("LSTM"),
      recurrent<nn::GRUImpl>("GRU"),
      self_attention(),
      parameter_free<nn::FlattenImpl>("Flatten", flatten_options),
      parameter_free<nn::ReLUImpl>("ReLU", inplace_options<nn::ReLUImpl>),
      parameter_free<nn::ReLU6Impl>("ReLU6", inplace_options<nn::ReLU6Impl>),
      parameter_free<nn::LeakyReLUImpl>("LeakyReLU", inplace_options<nn::LeakyReLUImpl>),
      parameter_free<nn::ELUImpl>("ELU", inplace_options<nn::ELUImpl>),
      parameter_free<nn::SELUImpl>("SELU", inplace_options<nn::SELUImpl>),
      parameter_free<nn::CELUImpl>("CELU", inplace_options<nn::CELUImpl>),
      parameter_free<nn::HardtanhImpl>("Hardtanh", inplace_options<nn::HardtanhImpl>),
      parameter_free<nn::DropoutImpl>("Dropout", inplace_options<nn::DropoutImpl>),
      parameter_free<nn::Dropout2dImpl>("Dropout2d", inplace_options<nn::Dropout2dImpl>),
      parameter_free<nn::Dropout3dImpl>("Dropout3d", inplace_options<nn::Dropout3dImpl>),
      parameter_free<nn::AlphaDropoutImpl>("AlphaDropout", inplace_options<nn::AlphaDropoutImpl>),
      parameter_free<nn::FeatureAlphaDropoutImpl>("FeatureAlphaDropout", inplace_options<nn::FeatureAlphaDropoutImpl>),
  };
  return types;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

bool is_builtin_layer_type_name(const std::string& name) {
  for (const LayerType& type : builtin_layer_types()) {
    if (type.name == name) return true;
  }
  return false;
}

const LayerType* find_layer_type(nn::Module& layer) {
  for (const LayerType& type : builtin_layer_types()) {
    if (type.matches(layer)) return &type;
  }
  return find_custom_layer_type(layer);
}

std::vector<std::string> swappable_layer_type_names() {
  std::vector<std::string> names;
  for (const LayerType& type : builtin_layer_types()) {
    if (type.slots) names.push_back(type.name);
  }
  for (std::string& name : custom_layer_type_names()) names.push_back(std::move(name));
  return names;
}

bool run_standard_layer(nn::Module& layer, const at::Tensor& x, at::Tensor* out) {
  const LayerType* type = find_layer_type(layer);
  if (type == nullptr || !type->run) return false;
  *out = type->run(layer, x);
  return true;
}

bool run_two_input_layer(nn::Module& layer, const at::Tensor& x1, const at::Tensor& x2, at::Tensor* out) {
  const LayerType* type = find_layer_type(layer);
  if (type == nullptr || !type->run_two) return false;
  *out = type->run_two(layer, x1, x2);
  return true;
}

bool has_parameter_slots(nn::Module& layer) {
  const LayerType* type = find_layer_type(layer);
  return type != nullptr && type->slots;
}

ParameterSlots parameter_slots(nn::Module& layer) {
  const LayerType* type = find_layer_type(layer);
  if (type == nullptr || !type->slots) {
    bad_input("psg4j does not know where the C++-frontend layer " + layer.name() +
              " keeps its parameters, so the vmap engine cannot swap them (the layer types it knows: " +
              joined(swappable_layer_type_names()) +
              "): register your own layer type with dev.psg4j.model.FrontendLayers.register(name, "
              "parameter slots, forward), use the microbatch engine (Engines.microbatch(), --engine "
              "microbatch), or Models.function(...) with a forward that uses the parameters it is given");
  }
  const ParameterSlots all = type->slots(layer);
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

void read_layer_options(nn::Module& layer, LayerSpec* spec) {
  const LayerType* type = find_layer_type(layer);
  if (type != nullptr && type->options) type->options(layer, spec);
}

std::shared_ptr<nn::Module> registry_replica(nn::Module& layer) {
  const LayerType* type = find_layer_type(layer);
  return type != nullptr && type->replica ? type->replica(layer) : nullptr;
}

void settle_layer_names(nn::Module& root) {
  root.name();
  for (const auto& module : root.modules(/*include_self=*/false)) module->name();
}

}  // namespace psg4j

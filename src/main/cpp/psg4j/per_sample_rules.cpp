#include "psg4j/per_sample_rules.h"

#include <c10/util/Exception.h>

#include <set>

namespace psg4j {
namespace {

// The buffer for `name`, or an undefined tensor when its gradient is not wanted.
at::Tensor wanted(const RuleOutputs& out, const char* name) {
  auto found = out.find(name);
  return found == out.end() ? at::Tensor() : found->second;
}

const at::Tensor& parameter(const LayerSpec& layer, const char* name) {
  for (const auto& [local, tensor] : layer.parameters) {
    if (local == name) return tensor;
  }
  TORCH_CHECK(false, layer.name, " has no parameter ", name);
}

bool always(const LayerSpec&) { return true; }

// ---- Linear: y = x Wᵀ + b over any number of positions per sample.

void linear_gradients(const LayerSpec& layer, const at::Tensor& input, const at::Tensor& grad_output,
                      const RuleOutputs& out) {
  // A 1-D input is one unbatched vector, not B samples.
  TORCH_CHECK(input.dim() >= 2, layer.name, ": Linear input without a batch dimension");
  const int64_t batch = input.size(0);
  const at::Tensor a = input.reshape({batch, -1, input.size(-1)});          // [B, T, I]
  const at::Tensor g = grad_output.reshape({batch, -1, grad_output.size(-1)});  // [B, T, O]
  if (at::Tensor w = wanted(out, "weight"); w.defined()) {
    if (a.size(1) == 1) {
      // One position: the outer product, one rounding per element as in the reference's mm.
      at::mul_out(w, g.view({batch, -1, 1}), a.view({batch, 1, -1}));
    } else {
      at::bmm_out(w, g.transpose(1, 2), a);
    }
  }
  if (at::Tensor b = wanted(out, "bias"); b.defined()) at::sum_out(b, g, {1});
}

// ---- Conv1d / Conv2d / Conv3d with zero padding: the samples as the groups of one convolution,
// whose weight gradient is every sample's (functorch's batching rule for the weight gradient,
// without the vmap around it); one batched gemm per group instead of one small gemm per sample.

bool conv_supported(const LayerSpec& layer) {
  const size_t dims = layer.stride.size();
  return layer.exact_padding && dims >= 1 && dims <= 3 && layer.padding.size() == dims &&
         layer.dilation.size() == dims && layer.groups >= 1;
}

void conv_gradients(const LayerSpec& layer, const at::Tensor& input, const at::Tensor& grad_output,
                    const RuleOutputs& out) {
  const int64_t dims = static_cast<int64_t>(layer.stride.size());
  // A batch-less input (C, *spatial) would put the samples in the channels.
  TORCH_CHECK(input.dim() == dims + 2, layer.name, ": Conv input without a batch dimension");
  const int64_t batch = input.size(0), out_channels = grad_output.size(1);
  if (at::Tensor w = wanted(out, "weight"); w.defined()) {
    const at::Tensor& weight = parameter(layer, "weight");
    auto samples_as_channels = [batch](const at::Tensor& t) {
      std::vector<int64_t> shape = t.sizes().vec();
      shape[1] *= batch;
      shape[0] = 1;
      return t.reshape(shape);
    };
    std::vector<int64_t> weights_shape = weight.sizes().vec();
    weights_shape[0] *= batch;
    // Only its shape is read: the weight's own gradient needs no weight values.
    const at::Tensor shape_only = at::empty(weights_shape, weight.options());
    const auto grads = at::convolution_backward(
        samples_as_channels(grad_output), samples_as_channels(input), shape_only, std::nullopt, layer.stride,
        layer.padding, layer.dilation, /*transposed=*/false, std::vector<int64_t>(dims, 0),
        layer.groups * batch, {false, true, false});
    w.view(weights_shape).copy_(std::get<1>(grads));
  }
  if (at::Tensor b = wanted(out, "bias"); b.defined()) {
    at::sum_out(b, grad_output.reshape({batch, out_channels, -1}), {2});
  }
}

// ---- Embedding: each sample's backprops added into its own [V, D] block of a [B·V, D] buffer.

bool embedding_supported(const LayerSpec& layer) { return layer.plain_lookup; }

void embedding_gradients(const LayerSpec& layer, const at::Tensor& input, const at::Tensor& grad_output,
                         const RuleOutputs& out) {
  at::Tensor w = wanted(out, "weight");
  if (!w.defined()) return;
  const int64_t batch = input.size(0), rows = w.size(1), width = w.size(2);
  const at::Tensor offsets = at::arange(batch, input.options().dtype(at::kLong)).mul_(rows).unsqueeze(1);
  const at::Tensor index = (input.reshape({batch, -1}).to(at::kLong) + offsets).reshape(-1);
  w.zero_();
  w.view({batch * rows, width}).index_add_(0, index, grad_output.reshape({-1, width}));
  // As the reference's embedding_backward: the padding row gets no gradient.
  if (layer.padding_idx) w.select(1, *layer.padding_idx >= 0 ? *layer.padding_idx : *layer.padding_idx + rows).zero_();
}

// ---- LayerNorm with affine parameters: weight gets Σ backprop·x̂ per sample, bias Σ backprop.

bool layer_norm_supported(const LayerSpec& layer) { return !layer.normalized_shape.empty(); }

void layer_norm_gradients(const LayerSpec& layer, const at::Tensor& input, const at::Tensor& grad_output,
                          const RuleOutputs& out) {
  const int64_t normalized_dims = static_cast<int64_t>(layer.normalized_shape.size());
  TORCH_CHECK(input.dim() > normalized_dims, layer.name, ": LayerNorm over the batch dimension");
  const int64_t batch = input.size(0);
  const int64_t features = c10::multiply_integers(layer.normalized_shape);
  const at::Tensor g = grad_output.reshape({batch, -1, features});
  if (at::Tensor w = wanted(out, "weight"); w.defined()) {
    const at::Tensor normalized = at::layer_norm(input, layer.normalized_shape, {}, {}, layer.eps);
    at::Tensor flat = w.view({batch, features});
    at::sum_out(flat, g * normalized.reshape({batch, -1, features}), {1});
  }
  if (at::Tensor b = wanted(out, "bias"); b.defined()) {
    at::Tensor flat = b.view({batch, features});
    at::sum_out(flat, g, {1});
  }
}

// The registry: one line per layer kind.
const std::map<std::string, PerSampleRule>& rules() {
  static const std::map<std::string, PerSampleRule> table = {
      {"Linear", {always, linear_gradients}},
      {"Conv1d", {conv_supported, conv_gradients}},
      {"Conv2d", {conv_supported, conv_gradients}},
      {"Conv3d", {conv_supported, conv_gradients}},
      {"Embedding", {embedding_supported, embedding_gradients}},
      {"LayerNorm", {layer_norm_supported, layer_norm_gradients}},
  };
  return table;
}

// Parameter-free layers that treat every sample alone, whatever the batch size.
const std::set<std::string>& passthrough_kinds() {
  static const std::set<std::string> kinds = {
      "ReLU", "ReLU6", "LeakyReLU", "GELU", "SiLU", "Mish", "Tanh", "Sigmoid", "ELU", "SELU", "CELU",
      "Softplus", "Softsign", "Tanhshrink", "Hardtanh", "Hardswish", "Hardsigmoid", "Identity",
      "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
      "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "Flatten",
      "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
  };
  return kinds;
}

bool is_dropout(const std::string& kind) { return kind.find("Dropout") != std::string::npos; }

}  // namespace

const PerSampleRule* rule_for(const LayerSpec& layer) {
  auto found = rules().find(layer.kind);
  if (found == rules().end() || !found->second.supports(layer)) return nullptr;
  return &found->second;
}

bool is_per_sample_passthrough(const LayerSpec& layer) {
  if (!layer.parameters.empty() || layer.inplace) return false;
  if (passthrough_kinds().count(layer.kind) == 0) return false;
  if (is_dropout(layer.kind)) return !layer.training;  // random in train mode
  if (layer.kind == "Flatten") return layer.start_dim >= 1;  // 0 or negative could fold the batch in
  return true;
}

}  // namespace psg4j

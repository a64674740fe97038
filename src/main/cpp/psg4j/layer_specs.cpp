#include "psg4j/layer_specs.h"

#include "psg4j/frontend_layers.h"

#include <torch/nn.h>
#include <torch/script.h>

namespace psg4j {
namespace {

namespace nn = torch::nn;

std::string dotted(const std::string& prefix, const std::string& local) {
  return prefix.empty() ? local : prefix + "." + local;
}

// ---- C++ frontend

// "torch::nn::Conv2dImpl" -> "Conv2d". A subclass has its own type name and stays unknown, so
// a layer whose forward a user changed never meets a rule.
std::string frontend_kind(const nn::Module& module) {
  const std::string& type = module.name();
  const std::string prefix = "torch::nn::", suffix = "Impl";
  if (type.rfind(prefix, 0) != 0 || type.size() <= prefix.size() + suffix.size() ||
      type.compare(type.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return "";
  }
  const std::string kind = type.substr(prefix.size(), type.size() - prefix.size() - suffix.size());
  return kind.find(':') == std::string::npos ? kind : "";
}

LayerSpec frontend_spec(nn::Module& module, const std::string& name) {
  LayerSpec spec;
  spec.kind = frontend_kind(module);
  spec.name = name;
  spec.training = module.is_training();
  // The members the forward reads: in psg4j's replicas they are the caller's parameter tensors,
  // while the registered copies only share their storage.
  if (has_parameter_slots(module)) {
    for (const auto& [local, slot] : parameter_slots(module)) spec.parameters.emplace_back(local, *slot);
  } else {
    for (const auto& p : module.named_parameters(/*recurse=*/false)) spec.parameters.emplace_back(p.key(), p.value());
  }
  read_layer_options(module, &spec);
  return spec;
}

void append_frontend(nn::SequentialImpl& sequential, const std::string& prefix, std::vector<ChainLayer>* chain) {
  const auto names = sequential.named_children();
  size_t k = 0;
  for (nn::AnyModule& any : sequential) {
    const std::string name = dotted(prefix, k < names.size() ? names[k].key() : std::to_string(k));
    ++k;
    nn::Module* layer = any.ptr().get();
    if (auto* inner = dynamic_cast<nn::SequentialImpl*>(layer)) {
      append_frontend(*inner, name, chain);
      continue;
    }
    nn::AnyModule* runner = &any;
    chain->push_back({frontend_spec(*layer, name), [layer, runner](const at::Tensor& x) {
                        at::Tensor out;
                        return run_standard_layer(*layer, x, &out) ? out : runner->forward<at::Tensor>(x);
                      }});
  }
}

// ---- TorchScript

// "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d" -> "Conv2d"; "" for any class
// outside torch.nn.modules (a user's, even one named like a standard layer).
std::string torchscript_kind(const torch::jit::Module& module) {
  const std::string qualified = module.type()->name()->qualifiedName();
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    const size_t dot = qualified.find('.', start);
    const std::string part = qualified.substr(start, dot == std::string::npos ? dot : dot - start);
    if (part.rfind("___torch_mangle", 0) != 0) parts.push_back(part);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  const bool standard = parts.size() == 6 && parts[0] == "__torch__" && parts[1] == "torch" &&
                        parts[2] == "nn" && parts[3] == "modules";
  return standard ? parts[5] : "";
}

// An int, or a tuple / list of ints, as torch.nn's modules keep stride, padding and shapes.
std::vector<int64_t> int_list(const c10::IValue& value) {
  if (value.isInt()) return {value.toInt()};
  std::vector<int64_t> out;
  if (value.isTuple()) {
    for (const c10::IValue& e : value.toTupleRef().elements()) out.push_back(e.toInt());
  } else {
    for (const c10::IValue& e : value.toListRef()) out.push_back(e.toInt());
  }
  return out;
}

bool flag(const torch::jit::Module& module, const char* name) {
  return module.hasattr(name) && module.attr(name).isBool() && module.attr(name).toBool();
}

void torchscript_options(const torch::jit::Module& m, LayerSpec* spec) {
  spec->inplace = flag(m, "inplace");
  if (spec->kind == "Conv1d" || spec->kind == "Conv2d" || spec->kind == "Conv3d") {
    spec->stride = int_list(m.attr("stride"));
    spec->dilation = int_list(m.attr("dilation"));
    spec->groups = m.attr("groups").toInt();
    const c10::IValue padding = m.attr("padding");
    if (padding.isString()) {
      spec->padding = std::vector<int64_t>(spec->stride.size(), 0);
      spec->exact_padding = padding.toStringRef() == "valid";
    } else {
      spec->padding = int_list(padding);
    }
    spec->exact_padding = spec->exact_padding && m.attr("padding_mode").toStringRef() == "zeros";
  } else if (spec->kind == "Embedding") {
    const c10::IValue padding_idx = m.attr("padding_idx");
    if (!padding_idx.isNone()) spec->padding_idx = padding_idx.toInt();
    spec->plain_lookup = m.attr("max_norm").isNone() && !flag(m, "scale_grad_by_freq") && !flag(m, "sparse");
  } else if (spec->kind == "LayerNorm") {
    spec->normalized_shape = int_list(m.attr("normalized_shape"));
    spec->eps = m.attr("eps").toDouble();
  } else if (spec->kind == "Flatten") {
    spec->start_dim = m.attr("start_dim").toInt();
  }
}

LayerSpec torchscript_spec(const torch::jit::Module& module, const std::string& name) {
  LayerSpec spec;
  spec.kind = torchscript_kind(module);
  spec.name = name;
  spec.training = module.is_training();
  for (const auto& p : module.named_parameters(/*recurse=*/false)) spec.parameters.emplace_back(p.name, p.value);
  // An unknown layer keeps only its name and parameters: no rule or passthrough will take it.
  if (!spec.kind.empty()) torchscript_options(module, &spec);
  return spec;
}

void append_torchscript(const torch::jit::Module& sequential, const std::string& prefix,
                        std::vector<ChainLayer>* chain) {
  for (const auto& child : sequential.named_children()) {
    const std::string name = dotted(prefix, child.name);
    torch::jit::Module layer = child.value;
    if (torchscript_kind(layer) == "Sequential") {
      append_torchscript(layer, name, chain);
      continue;
    }
    chain->push_back({torchscript_spec(layer, name), [layer](const at::Tensor& x) mutable {
                        const c10::IValue out = layer.forward({x});
                        TORCH_CHECK(out.isTensor(), "a layer of the chain returned no tensor");
                        return out.toTensor();
                      }});
  }
}

}  // namespace

bool frontend_layer_chain(nn::Module& module, std::vector<ChainLayer>* chain) {
  chain->clear();
  if (auto* sequential = dynamic_cast<nn::SequentialImpl*>(&module)) {
    append_frontend(*sequential, "", chain);
    return true;
  }
  // One standard layer on its own: a chain of one, its parameters named without a prefix.
  if (frontend_kind(module).empty() || !has_parameter_slots(module)) return false;
  nn::Module* layer = &module;
  LayerSpec spec = frontend_spec(module, "");
  chain->push_back({std::move(spec), [layer](const at::Tensor& x) {
                      at::Tensor out;
                      TORCH_CHECK(run_standard_layer(*layer, x, &out), "not a standard layer");
                      return out;
                    }});
  return true;
}

bool torchscript_layer_chain(const torch::jit::Module& module, std::vector<ChainLayer>* chain) {
  chain->clear();
  try {
    if (torchscript_kind(module) != "Sequential") return false;
    append_torchscript(module, "", chain);
  } catch (const c10::Error&) {
    return false;  // an attribute of an unexpected type: not a layer the rules know
  }
  return true;
}

}  // namespace psg4j

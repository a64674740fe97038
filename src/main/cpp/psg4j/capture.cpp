#include "psg4j/capture.h"

#include "psg4j/error.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

namespace psg4j {
namespace {

// The model's trainable name of `tensor`, found by identity (a tied parameter has one), or "".
std::string trainable_name_of(const TrainableParameters& trainable, const at::Tensor& tensor) {
  for (const TrainableParameter& p : trainable) {
    if (p.tensor.is_same(tensor)) return p.name;
  }
  return "";
}

bool has_trainable(const CapturedLayer& layer) {
  for (const std::string& name : layer.trainable_names) {
    if (!name.empty()) return true;
  }
  return false;
}

}  // namespace

std::vector<CapturedLayer> capture_layers(const Problem& problem) {
  const Batch& batch = problem.batch;
  if (batch.inputs.size() != 1) {
    throw Error(ErrorKind::Unsupported, "layer capture runs a chain of layers on one input, but the batch has " +
                std::to_string(batch.inputs.size()) + " inputs: a hooks-style sampler needs a one-input model");
  }
  const TrainableParameters trainable = problem.model.parameters();
  const int64_t batch_size = batch.validate();
  std::vector<CapturedLayer> captured;
  std::vector<at::Tensor> outputs;
  at::Tensor model_output;
  c10::AutoGradMode grad_mode(true);
  const bool chain = problem.model.visit_layer_chain([&](const std::vector<ChainLayer>& layers) {
    at::Tensor h = batch.inputs[0];
    for (const ChainLayer& layer : layers) {
      CapturedLayer entry{layer.spec, {}, h.detach(), at::Tensor()};
      for (const auto& parameter : layer.spec.parameters) {
        entry.trainable_names.push_back(trainable_name_of(trainable, parameter.second));
      }
      h = layer.run(h);
      if (has_trainable(entry)) {
        captured.push_back(std::move(entry));
        outputs.push_back(h);
      }
    }
    model_output = h;
  });
  if (!chain) {
    throw Error(ErrorKind::Unsupported, "layer capture needs a model that is a chain of standard layers (a Sequential of Linear, Conv, "
                "Embedding, norms, recurrent layers, activations, ...), and " + problem.model.describe() +
                " is not one: compute its per-sample gradients another way (e.g. Engines.vmap())");
  }
  const at::Tensor loss = problem.loss(model_output, batch.targets, problem.reduction, batch_size);
  std::vector<at::Tensor> wrt;
  std::vector<size_t> reached;
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (outputs[k].requires_grad()) {
      wrt.push_back(outputs[k]);
      reached.push_back(k);
    }
  }
  std::vector<at::Tensor> grads;
  if (!wrt.empty() && loss.requires_grad()) {
    grads = torch::autograd::grad({loss}, wrt, {}, false, false, /*allow_unused=*/true);
  }
  for (size_t k = 0; k < captured.size(); ++k) {
    at::Tensor g;
    for (size_t m = 0; m < reached.size() && m < grads.size(); ++m) {
      if (reached[m] == k) g = grads[m];
    }
    captured[k].backprops = g.defined() ? g.detach() : at::zeros_like(outputs[k]).detach();
  }
  return captured;
}

}  // namespace psg4j

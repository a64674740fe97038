#include "psg4j/rule_engine.h"

#include "psg4j/batch.h"
#include "psg4j/error.h"
#include "psg4j/per_sample_rules.h"
#include "psg4j/transforms.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <map>

namespace psg4j {
namespace {

// Which trainable parameters each layer's rule writes: (local name, index in trainable order).
struct Plan {
  std::vector<const PerSampleRule*> rules;                         // null: a passthrough
  std::vector<std::vector<std::pair<std::string, size_t>>> writes;  // per layer
};

// Every layer has a rule or passes samples through, and every trainable parameter belongs to
// exactly one rule layer; otherwise nullopt.
std::optional<Plan> plan_for(const std::vector<ChainLayer>& chain, const TrainableParameters& trainable) {
  std::map<std::string, size_t> index;
  for (size_t k = 0; k < trainable.size(); ++k) {
    if (!trainable[k].aliases.empty()) return std::nullopt;  // tied: one gradient summed over uses
    index.emplace(trainable[k].name, k);
  }
  Plan plan;
  std::vector<bool> covered(trainable.size(), false);
  for (const ChainLayer& layer : chain) {
    const LayerSpec& spec = layer.spec;
    const PerSampleRule* rule = rule_for(spec);
    if (rule == nullptr && !is_per_sample_passthrough(spec)) return std::nullopt;
    plan.rules.push_back(rule);
    plan.writes.emplace_back();
    for (const auto& [local, tensor] : spec.parameters) {
      auto found = index.find(spec.name.empty() ? local : spec.name + "." + local);
      if (found == index.end()) {
        if (tensor.requires_grad()) return std::nullopt;  // a name the model does not report
        continue;                                         // frozen: no gradient wanted
      }
      if (covered[found->second] || !trainable[found->second].tensor.is_same(tensor)) return std::nullopt;
      covered[found->second] = true;
      plan.writes.back().emplace_back(local, found->second);
    }
  }
  for (bool c : covered) {
    if (!c) return std::nullopt;
  }
  return plan;
}

// d loss_i / d output_i for every sample i of `output` (plain, [n, ...]): the reference's loss
// of each one-sample batch, through the same vmap(grad) as the functorch route, on the loss alone.
at::Tensor per_sample_loss_gradients(const Problem& problem, const at::Tensor& output, int64_t start, int64_t n) {
  const Batch& batch = problem.batch;
  std::vector<at::Tensor> targets;
  for (const at::Tensor& t : batch.targets) targets.push_back(t.narrow(normalized_dim(t, batch.target_batch_dim), start, n));
  Unbatched unbatched;
  bool reached = false;
  {
    VmapLevel vmap(n, Randomness::Error);
    const at::Tensor sample_output = one_sample_batches(vmap, {output}, 0).at(0);
    const std::vector<at::Tensor> sample_targets = one_sample_batches(vmap, targets, batch.target_batch_dim);
    at::Tensor g;
    {
      GradLevel grad;
      const at::Tensor wrapped = grad.differentiable(sample_output);
      const at::Tensor loss = problem.loss(wrapped, sample_targets, problem.reduction, /*batch_size=*/1);
      TORCH_CHECK(loss.requires_grad(), "the loss does not depend on the output");
      g = torch::autograd::grad({loss}, {wrapped}, {}, false, false, /*allow_unused=*/true).at(0);
      if (g.defined()) g = grad.unwrap(g);
    }
    reached = g.defined();
    if (reached) unbatched = unbatch(g, vmap.id());
  }
  if (!reached) return at::zeros_like(output);
  return batch_first(unbatched, n).reshape(output.sizes());
}

// Samples [start, start + n): forward, per-sample loss gradients, backward, rules.
void chunk_gradients(const Problem& problem, const std::vector<ChainLayer>& chain, const Plan& plan,
                     int64_t start, int64_t n, const std::vector<at::Tensor>& buffers) {
  c10::AutoGradMode grad_mode(true);
  std::vector<at::Tensor> inputs(chain.size()), outputs(chain.size());
  at::Tensor h = problem.batch.inputs[0].narrow(0, start, n);
  for (size_t k = 0; k < chain.size(); ++k) {
    const bool wanted = !plan.writes[k].empty();
    if (wanted) inputs[k] = h;
    h = chain[k].run(h);
    if (wanted) outputs[k] = h;
  }
  TORCH_CHECK(h.dim() >= 1 && h.size(0) == n, "the chain's output is not batch-first");
  const at::Tensor loss_gradients = per_sample_loss_gradients(problem, h.detach(), start, n);

  std::vector<at::Tensor> wrt;
  std::vector<size_t> layers;
  for (size_t k = 0; k < chain.size(); ++k) {
    if (outputs[k].defined() && outputs[k].requires_grad()) {
      wrt.push_back(outputs[k]);
      layers.push_back(k);
    }
  }
  std::vector<at::Tensor> backprops(wrt.size());
  if (!wrt.empty() && h.requires_grad()) {
    backprops = torch::autograd::grad({h}, wrt, {loss_gradients}, false, false, /*allow_unused=*/true);
  }
  c10::AutoGradMode no_grad(false);
  for (size_t k = 0; k < chain.size(); ++k) {
    RuleOutputs out;
    for (const auto& [local, index] : plan.writes[k]) out.emplace(local, buffers[index].narrow(0, start, n));
    if (out.empty()) continue;
    const auto position = std::find(layers.begin(), layers.end(), k);
    const at::Tensor backprop =
        position == layers.end() ? at::Tensor() : backprops[position - layers.begin()];
    if (!backprop.defined()) {  // the loss does not reach this layer
      for (auto& entry : out) entry.second.zero_();
      continue;
    }
    plan.rules[k]->gradients(chain[k].spec, inputs[k].detach(), backprop, out);
  }
}

}  // namespace

std::optional<std::vector<at::Tensor>> rule_gradients(
    const Problem& problem, int64_t chunk_size, const std::function<std::vector<at::Tensor>()>& make_buffers) {
  const Batch& batch = problem.batch;
  if (batch.inputs.size() != 1 || normalized_dim(batch.inputs[0], batch.batch_dim) != 0) return std::nullopt;
  const int64_t batch_size = batch.inputs[0].size(0);
  const TrainableParameters trainable = problem.model.parameters();
  if (trainable.empty() || batch_size == 0) return std::nullopt;
  std::optional<std::vector<at::Tensor>> result;
  problem.model.visit_layer_chain([&](const std::vector<ChainLayer>& chain) {
    const std::optional<Plan> plan = plan_for(chain, trainable);
    if (!plan) return;
    std::vector<at::Tensor> buffers = make_buffers();
    const int64_t step = chunk_size > 0 ? std::min(chunk_size, batch_size) : batch_size;
    for (int64_t start = 0; start < batch_size; start += step) {
      chunk_gradients(problem, chain, *plan, start, std::min(step, batch_size - start), buffers);
    }
    result = std::move(buffers);
  });
  return result;
}

}  // namespace psg4j

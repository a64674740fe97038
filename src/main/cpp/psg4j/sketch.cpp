#include "psg4j/sketch.h"

#include "psg4j/error.h"
#include "psg4j/model_variants.h"
#include "psg4j/samples_layout.h"
#include "psg4j/transforms.h"

#include <ATen/Dispatch.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <functional>
#include <random>

namespace psg4j {
namespace {

// wᵢ = ±(1 + U): a fair sign, so that a swap of two samples or an error of one cannot cancel
// with probability ½ as ±1 weights would, and a magnitude in [1, 2), never near zero as a
// Gaussian's can be for the one sample that is wrong. Rounded to float so that the backward's
// weights (float grad_outputs) are exactly the ones the candidate is projected with.
at::Tensor draw_weights(int64_t projections, int64_t batch_size, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::uniform_real_distribution<double> magnitude(1.0, 2.0);
  std::bernoulli_distribution negative(0.5);
  at::Tensor weights = at::empty({projections, batch_size}, at::kDouble);
  double* w = weights.data_ptr<double>();
  for (int64_t k = 0; k < projections * batch_size; ++k) {
    w[k] = static_cast<float>(negative(generator) ? -magnitude(generator) : magnitude(generator));
  }
  return weights;
}

[[noreturn]] void refuse_custom_loss(const std::string& cause) {
  throw Error(ErrorKind::Unsupported,
              "sketch mode needs each sample's loss, and the custom loss cannot be vmapped over the samples (" +
                  essential_line(cause) +
                  "): make it vmap-compatible (no .item(), no in-place writes into its inputs) or use exact mode "
                  "(--mode exact, CheckMode.EXACT)");
}

// Each sample's loss as the reference takes it (a one-sample batch, `reduction`), from the
// batched output: the loss vmapped over the output's samples dimension, differentiable by the
// autograd outside the level. [B].
at::Tensor per_sample_losses(const Loss& loss, const at::Tensor& output, int64_t output_dim, const Batch& batch,
                             Reduction reduction) {
  const int64_t batch_size = output.size(output_dim);
  try {
    Unbatched losses;
    {
      VmapLevel vmap(batch_size, Randomness::Error);
      const std::vector<at::Tensor> sample_output = one_sample_batches(vmap, {output}, output_dim);
      const std::vector<at::Tensor> sample_targets = one_sample_batches(vmap, batch.targets, batch.target_batch_dim);
      losses = unbatch(loss(sample_output[0], sample_targets, reduction, /*batch_size=*/1), vmap.id());
    }
    return batch_first(losses, batch_size).reshape({batch_size});
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::BadInput || loss.kind != LossKind::Custom) throw;
    refuse_custom_loss(e.what());
  } catch (const c10::Error& e) {
    if (loss.kind != LossKind::Custom) throw;
    refuse_custom_loss(e.what_without_backtrace());
  } catch (const std::exception& e) {
    if (loss.kind != LossKind::Custom) throw;
    refuse_custom_loss(e.what());
  }
}

// n with Lᵢ(mean) = Lᵢ(sum) / nᵢ for a one-sample batch, where a built-in loss makes that exact:
// l1 and mse average the sample's output elements, cross_entropy its positions that are not
// ignored, the sum loss divides by the batch size, 1. None for a custom loss, and where a sample
// has no position to average (its mean is NaN, its own pass says so).
std::optional<at::Tensor> mean_rescaling(const Loss& loss, const at::Tensor& output, const Batch& batch,
                                         int64_t batch_size) {
  switch (loss.kind) {
    case LossKind::L1:
    case LossKind::MSE:
      return at::full({batch_size}, static_cast<double>(output.numel() / batch_size), at::kDouble);
    case LossKind::Sum:
      return at::ones({batch_size}, at::kDouble);
    case LossKind::CrossEntropy: {
      const at::Tensor& target = batch.targets.at(0);
      const int64_t dim = normalized_dim(target, batch.target_batch_dim, "the cross_entropy target");
      const at::Tensor counted =
          target.ne(-100).movedim(dim, 0).reshape({batch_size, -1}).sum(1).to(at::kDouble).cpu();
      if (counted.min().item<double>() == 0) return std::nullopt;
      return counted;
    }
    case LossKind::Custom:
      return std::nullopt;
  }
  return std::nullopt;
}

// Σᵢ wₖᵢ·gᵢ for each projection k, by backward of Σᵢ wₖᵢ·Lᵢ: per parameter, [K, numel] doubles.
std::vector<at::Tensor> projected_reference(const at::Tensor& losses, const std::vector<at::Tensor>& leaves,
                                            const at::Tensor& weights, bool keep_graph, int64_t* backwards) {
  const int64_t projections = weights.size(0);
  std::vector<at::Tensor> out;
  for (const at::Tensor& leaf : leaves) {
    out.push_back(at::empty({projections, leaf.numel()}, at::TensorOptions().dtype(at::kDouble).device(leaf.device())));
  }
  for (int64_t k = 0; k < projections; ++k) {
    const at::Tensor grad_output = weights[k].to(losses.options());  // exact: the weights are floats
    const bool retain = keep_graph || k + 1 < projections;
    std::vector<at::Tensor> grads = torch::autograd::grad({losses}, leaves, {grad_output}, retain,
                                                          /*create_graph=*/false, /*allow_unused=*/true);
    ++*backwards;
    for (size_t p = 0; p < leaves.size(); ++p) {
      if (grads[p].defined()) {
        out[p][k].copy_(grads[p].reshape({-1}));
      } else {
        out[p][k].zero_();
      }
    }
  }
  return out;
}

// The candidate's side in one read: Σᵢ wₖᵢ·Gᵢ for every k, and Σᵢ Gᵢ², Σᵢ |Gᵢ| (for the zones).
struct CandidateProjection {
  at::Tensor projected;  // [K, n]
  at::Tensor squares;    // [n]
  at::Tensor magnitudes; // [n]
};

// Elements in blocks that keep the K + 2 accumulators in cache while the samples stream by.
constexpr int64_t kBlock = 1024;

template <typename T>
void project_host(const T* g, int64_t batch_size, int64_t n, const double* w, int64_t projections, double* projected,
                  double* squares, double* magnitudes) {
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t len = std::min(kBlock, n - start);
    for (int64_t i = 0; i < batch_size; ++i) {
      const T* row = g + i * n + start;
      double* sq = squares + start;
      double* mag = magnitudes + start;
#pragma omp simd
      for (int64_t e = 0; e < len; ++e) {
        const double v = static_cast<double>(row[e]);
        sq[e] += v * v;
        mag[e] += std::abs(v);
      }
      for (int64_t k = 0; k < projections; ++k) {
        const double wk = w[k * batch_size + i];
        double* acc = projected + k * n + start;
#pragma omp simd
        for (int64_t e = 0; e < len; ++e) acc[e] += wk * static_cast<double>(row[e]);
      }
    }
  }
}

CandidateProjection project_candidate(const at::Tensor& candidate, const at::Tensor& weights) {
  const int64_t batch_size = candidate.size(0);
  const int64_t projections = weights.size(0);
  if (!candidate.device().is_cpu()) {
    const at::Tensor g = candidate.detach().reshape({batch_size, -1}).to(at::kDouble);
    return {weights.to(g.device()).matmul(g), g.square().sum(0), g.abs().sum(0)};
  }
  const at::ScalarType type = candidate.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor g = candidate.detach().to(type).contiguous();
  const int64_t n = g.numel() / std::max<int64_t>(batch_size, 1);
  CandidateProjection out{at::zeros({projections, n}, at::kDouble), at::zeros({n}, at::kDouble),
                          at::zeros({n}, at::kDouble)};
  const at::Tensor w = weights.contiguous();
  AT_DISPATCH_FLOATING_TYPES(type, "psg4j_project_candidate", [&] {
    project_host(g.const_data_ptr<scalar_t>(), batch_size, n, w.const_data_ptr<double>(), projections,
                 out.projected.data_ptr<double>(), out.squares.data_ptr<double>(), out.magnitudes.data_ptr<double>());
  });
  return out;
}

// The parameter's own rounding level: the median, over its elements that any sample's gradient
// reaches, of the residual in units of min|w|·T_e. A planted or buggy element is an outlier and
// does not move it; a bug in most elements moves it up to the cap ρ.
double rounding_level(const at::Tensor& scaled_residual, const at::Tensor& squares) {
  const at::Tensor reached = squares.gt(0).unsqueeze(0).expand_as(scaled_residual);
  const at::Tensor informative = scaled_residual.masked_select(reached);
  if (informative.numel() == 0) return 0.0;
  return at::nan_to_num(informative, std::numeric_limits<double>::infinity()).median().item<double>();
}

// The zone of one parameter: every element of every projection against its pass threshold P and
// its fail threshold F (sketch.h).
SketchVerdict judge(const CandidateProjection& candidate, const at::Tensor& reference, const at::Tensor& weights,
                    const Tolerance& tolerance) {
  const at::Tensor magnitudes = weights.abs().to(candidate.projected.device());
  const at::Tensor w_max = std::get<0>(magnitudes.max(1, /*keepdim=*/true));
  const at::Tensor w_min = std::get<0>(magnitudes.min(1, /*keepdim=*/true));
  const double batch_size = static_cast<double>(weights.size(1));
  const double rtol = tolerance.rtol / (1.0 - std::min(tolerance.rtol, 0.5));
  const at::Tensor residual = (candidate.projected - reference.to(candidate.projected.device())).abs();
  const at::Tensor typical_tolerance = ((candidate.squares / batch_size).sqrt() * tolerance.rtol + tolerance.atol).unsqueeze(0);
  const double fraction = std::min(kSketchPassFraction, kSketchNoiseMultiplier * rounding_level(residual / (w_min * typical_tolerance),
                                                                                                 candidate.squares));
  const at::Tensor pass = w_min * at::clamp_min(typical_tolerance * fraction, 0.5 * tolerance.atol);
  const at::Tensor fail =
      w_max * (candidate.magnitudes.unsqueeze(0) * rtol + batch_size * tolerance.atol * (1.0 + rtol)) + pass;
  SketchVerdict verdict;
  if (residual.le(pass).all().item<bool>()) {  // NaN residuals never pass
    verdict.zone = SketchZone::Pass;
  } else {
    verdict.zone = residual.le(fail).all().item<bool>() ? SketchZone::Undecided : SketchZone::Fail;
  }
  const at::Tensor ratio = at::where(pass.gt(0), residual / pass,
                                     at::where(residual.gt(0), std::numeric_limits<double>::infinity(), 0.0));
  verdict.residual_ratio = at::nan_to_num(ratio, std::numeric_limits<double>::infinity()).max().item<double>();
  return verdict;
}

// The batched forward the reference projections are taken through. In double where the model runs
// in double (every tensor its forward reads cast, frozen parameters and buffers included, and its
// floating inputs: model_variants.h): the float backward's own reduction over B samples rounds at a
// few tolerances of one sample at B = 256, which would hide one sample's error; in double only the
// candidate's rounding is left.
struct ForwardGraph {
  at::Tensor output;
  std::vector<at::Tensor> leaves;  // what the projections differentiate, one per parameter
  Batch batch;                     // targets in the output's precision
  bool in_double = false;
};

at::Tensor forward_or_explain(const Model& model, const std::function<at::Tensor()>& forward) {
  try {
    return forward();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::ModelFailure, "running " + model.describe() + " on the batch failed: " +
                                             cause_first(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw Error(ErrorKind::ModelFailure, "running " + model.describe() + " on the batch failed: " + cause_first(e.what()));
  }
}

ForwardGraph batched_forward(const Model& model, const Batch& batch, const TrainableParameters& parameters) {
  ForwardGraph graph;
  try {
    const std::shared_ptr<Model> cast = cast_model(model, at::kDouble);
    for (const TrainableParameter& p : cast->parameters()) graph.leaves.push_back(p.tensor);
    graph.batch = cast_batch(batch, at::kDouble);
    graph.output = cast->forward(copies_of(graph.batch.inputs));  // a forward may write into its inputs
    graph.in_double = graph.output.scalar_type() == at::kDouble;
    if (graph.in_double) return graph;
  } catch (const std::exception&) {
    // A model that makes float tensors of its own (a constant, a tensor its closure keeps) runs in
    // its precision.
  }
  graph = ForwardGraph{};
  for (const TrainableParameter& p : parameters) graph.leaves.push_back(p.tensor);
  graph.batch = batch;
  graph.output = forward_or_explain(model, [&] { return model.forward(copies_of(batch.inputs)); });
  return graph;
}

// Where the reference's projections come from: one vector of per-sample losses, backpropagated
// once per projection, and the weights each reduction's candidate is projected with.
struct ReductionPlan {
  Reduction reduction;
  size_t source;       // index into the sources
  at::Tensor weights;  // [K, B], the candidate's projection weights
};

}  // namespace

SketchComparisons sketch_compare(const Model& model, const Batch& batch, const Loss& loss,
                                 const std::vector<std::pair<Reduction, NamedTensors>>& candidates,
                                 const Tolerance& tolerance, const SketchOptions& options) {
  if (options.projections < 1 || options.projections > kMaxSketchProjections) {
    bad_input("sketch projections must be in [1, " + std::to_string(kMaxSketchProjections) + "], got " +
              std::to_string(options.projections));
  }
  const int64_t batch_size = batch.validate();
  check_targets(Problem{model, batch, loss, Reduction::Sum}, 0, batch_size);
  const TrainableParameters parameters = model.parameters();
  SketchComparisons result;
  std::vector<std::vector<ComparedCandidate>> compared;
  for (const auto& [reduction, candidate] : candidates) {
    result.comparisons.emplace_back();
    compared.push_back(plan_comparison(result.comparisons.back(), parameters, batch_size, candidate));
  }
  const at::Tensor weights = draw_weights(options.projections, batch_size, options.seed);

  c10::AutoGradMode grad_mode(true);
  ForwardGraph graph = batched_forward(model, batch, parameters);
  result.cost.forwards = 1;
  result.cost.in_double = graph.in_double;
  const int64_t output_dim = require_samples_dim(graph.output, batch.batch_dim, batch_size, "model's output");

  // Built-in losses: the mean candidate is projected with wᵢ·nᵢ, whose reference projection is
  // the sum losses' with weights wᵢ: one set of backwards serves both reductions.
  std::vector<at::Tensor> sources;
  std::map<Reduction, size_t> source_of;
  std::vector<ReductionPlan> plans;
  const std::optional<at::Tensor> rescaling = mean_rescaling(loss, graph.output, batch, batch_size);
  for (const auto& [reduction, candidate] : candidates) {
    const bool shared = rescaling && reduction == Reduction::Mean;
    const Reduction taken = shared ? Reduction::Sum : reduction;
    auto found = source_of.find(taken);
    if (found == source_of.end()) {
      found = source_of.emplace(taken, sources.size()).first;
      sources.push_back(per_sample_losses(loss, graph.output, output_dim, graph.batch, taken));
    }
    plans.push_back({reduction, found->second, shared ? weights * rescaling->unsqueeze(0) : weights});
  }
  std::vector<std::vector<at::Tensor>> references;
  for (size_t s = 0; s < sources.size(); ++s) {
    references.push_back(
        projected_reference(sources[s], graph.leaves, weights, /*keep_graph=*/s + 1 < sources.size(), &result.cost.backwards));
  }
  graph = ForwardGraph{};
  sources.clear();

  // What the sketch does not pass goes to the reference: one pass (and one rounding measurement)
  // for every reduction.
  std::vector<Reduction> reductions;
  std::vector<std::vector<ComparedCandidate>> undecided(plans.size());
  std::vector<Comparison*> comparisons;
  for (size_t r = 0; r < plans.size(); ++r) {
    Comparison& comparison = result.comparisons[r];
    for (const ComparedCandidate& c : compared[r]) {
      const SketchVerdict verdict = judge(project_candidate(c.candidate, plans[r].weights),
                                          references[plans[r].source][c.parameter], plans[r].weights, tolerance);
      comparison.params[c.entry].sketch = verdict;
      if (verdict.zone != SketchZone::Pass) undecided[r].push_back(c);
    }
    result.cost.exact_params += static_cast<int64_t>(undecided[r].size());
    reductions.push_back(plans[r].reduction);
    comparisons.push_back(&comparison);
  }
  compare_exactly(model, batch, loss, reductions, parameters, undecided, tolerance, comparisons);
  return result;
}

}  // namespace psg4j

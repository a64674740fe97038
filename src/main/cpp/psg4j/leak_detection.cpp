#include "psg4j/leak_detection.h"

#include "psg4j/batch.h"
#include "psg4j/op_outputs.h"
#include "psg4j/samples_layout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <algorithm>

namespace psg4j {
namespace {

bool is_floating(const at::Tensor& t) { return at::isFloatingType(t.scalar_type()); }

// The first recorded op output computed from integer samples that is floating-point, tracked by
// autograd and laid out per sample: where the gradient route starts for token ids.
const OpOutput* first_differentiable_from_integers(const std::vector<OpOutput>& outputs, int64_t batch_dim,
                                                   int64_t batch_size) {
  for (const OpOutput& op : outputs) {
    if (op.reads_integer_samples && is_floating(op.value) && samples_dim(op.value, batch_dim, batch_size)) {
      return &op;
    }
  }
  return nullptr;
}

int64_t bits_for(int64_t batch_size) {
  int64_t bits = 0;
  while ((int64_t{1} << bits) < batch_size) ++bits;
  return bits;
}

// For each bit of the sample index, the samples with it set and the others: 2⌈log₂B⌉ sides, and
// any two samples are on different sides of some bit.
std::vector<std::vector<int64_t>> bit_partitions(int64_t batch_size) {
  std::vector<std::vector<int64_t>> sides;
  for (int64_t bit = 0; bit < bits_for(batch_size); ++bit) {
    std::vector<int64_t> pair[2];
    for (int64_t i = 0; i < batch_size; ++i) pair[(i >> bit) & 1].push_back(i);
    sides.push_back(std::move(pair[0]));
    sides.push_back(std::move(pair[1]));
  }
  return sides;
}

// The samples not in `excluded` whose `magnitude` is above `tolerance` × the largest one.
std::vector<int64_t> samples_above(const std::vector<double>& magnitude, const std::vector<int64_t>& excluded,
                                   double tolerance) {
  double scale = 1e-30;
  for (double m : magnitude) scale = m > scale ? m : scale;  // NaN never wins
  std::vector<bool> skip(magnitude.size(), false);
  for (int64_t i : excluded) skip[i] = true;
  std::vector<int64_t> found;
  for (size_t i = 0; i < magnitude.size(); ++i) {
    if (!skip[i] && magnitude[i] > tolerance * scale) found.push_back(static_cast<int64_t>(i));
  }
  return found;
}

}  // namespace

DifferentiableForward differentiable_forward(const Forward& forward, const std::vector<at::Tensor>& inputs,
                                             int64_t batch_dim, int64_t batch_size, int64_t output_dim,
                                             bool record_ops) {
  c10::AutoGradMode grad_mode(true);
  DifferentiableForward result;
  result.output_dim = output_dim;
  std::vector<at::Tensor> leaves;
  bool integers = false;
  for (const at::Tensor& x : inputs) {
    if (is_floating(x)) {
      leaves.push_back(x.detach().clone().requires_grad_());
      result.sources.push_back(leaves.back());
      result.source_dims.push_back(normalized_dim(x, batch_dim));
    } else {
      leaves.push_back(x);
      integers = true;
    }
  }
  if (!integers && !record_ops) {
    result.output = forward(leaves);
    return result;
  }
  // Every op autograd-tracked on its own (no differentiable subgraphs), so that its output is a
  // node of the graph the VJPs walk.
  torch::jit::GraphOptimizerEnabledGuard plain_interpreter(false);
  result.ops = record_op_outputs([&] { result.output = forward(leaves); }, batch_size);
  if (!integers) return result;
  if (const OpOutput* start = first_differentiable_from_integers(result.ops, batch_dim, batch_size)) {
    result.sources.push_back(start->value);
    result.source_dims.push_back(*samples_dim(start->value, batch_dim, batch_size));
    result.from_intermediate = true;
  }
  return result;
}

LeakFinder::LeakFinder(const DifferentiableForward& forward, int64_t batch_size, double tolerance, uint64_t seed)
    : forward_(forward), batch_size_(batch_size), tolerance_(tolerance) {
  const at::Tensor& out = forward_.output;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  weights_ = at::randn(out.sizes(), generator, out.options().device(at::kCPU).requires_grad(false)).to(out.device());
}

bool LeakFinder::usable() const { return !forward_.sources.empty() && forward_.output.requires_grad(); }

std::vector<int64_t> LeakFinder::sources_of(const std::vector<int64_t>& targets) {
  if (!usable() || targets.empty()) return {};
  const at::Tensor& out = forward_.output;
  const at::Tensor cotangent =
      weights_ * samples_mask(targets, batch_size_, forward_.output_dim, out.dim(), out.options());
  const std::vector<at::Tensor> grads =
      torch::autograd::grad({out}, forward_.sources, {cotangent}, /*retain_graph=*/true,
                            /*create_graph=*/false, /*allow_unused=*/true);
  ++vjps_;
  std::vector<double> sensitivity(batch_size_, 0.0);
  for (size_t k = 0; k < grads.size(); ++k) {
    if (!grads[k].defined()) continue;
    const std::vector<double> m = per_sample_max_abs(grads[k], forward_.source_dims[k], batch_size_);
    for (int64_t j = 0; j < batch_size_; ++j) sensitivity[j] = std::max(sensitivity[j], m[j]);
  }
  return samples_above(sensitivity, targets, tolerance_);
}

std::vector<int64_t> LeakFinder::targets_of(const std::vector<int64_t>& sources) {
  if (!usable() || sources.empty()) return {};
  const at::Tensor& out = forward_.output;
  if (!dummy_cotangent_.defined()) {
    dummy_cotangent_ = at::zeros_like(out).requires_grad_();
    cotangent_gradients_ = torch::autograd::grad({out}, forward_.sources, {dummy_cotangent_}, /*retain_graph=*/true,
                                                 /*create_graph=*/true, /*allow_unused=*/true);
    ++vjps_;
  }
  auto generator = at::make_generator<at::CPUGeneratorImpl>(vjps_);
  at::Tensor product;  // Σ_k <g_k(u), v_k>, whose gradient in u is J v
  for (size_t k = 0; k < forward_.sources.size(); ++k) {
    const at::Tensor& g = cotangent_gradients_[k];
    if (!g.defined() || !g.requires_grad()) continue;
    const at::Tensor tangent =
        at::randn(g.sizes(), generator, g.options().device(at::kCPU).requires_grad(false)).to(g.device()) *
        samples_mask(sources, batch_size_, forward_.source_dims[k], g.dim(), g.options());
    const at::Tensor term = (g * tangent).sum();
    product = product.defined() ? product + term : term;
  }
  if (!product.defined()) return {};
  const std::vector<at::Tensor> jv = torch::autograd::grad({product}, {dummy_cotangent_}, {}, /*retain_graph=*/true,
                                                           /*create_graph=*/false, /*allow_unused=*/true);
  ++vjps_;
  if (!jv[0].defined()) return {};
  return samples_above(per_sample_max_abs(jv[0], forward_.output_dim, batch_size_), sources, tolerance_);
}

PartitionFindings partition_passes(LeakFinder& finder, int64_t batch_size) {
  PartitionFindings findings;
  const std::vector<std::vector<int64_t>> sides = bit_partitions(batch_size);
  for (size_t k = 0; k < sides.size(); ++k) {
    const uint64_t bit = uint64_t{1} << (k / 2);  // sides come in pairs, one pair per bit
    for (int64_t j : finder.sources_of(sides[k])) findings.differing_bits[j] |= bit;
  }
  for (const auto& [source, bits] : findings.differing_bits) {
    findings.sources.push_back(source);
    const int64_t target = source ^ static_cast<int64_t>(bits);
    if (target < batch_size) findings.decoded_targets[source] = target;
  }
  return findings;
}

std::optional<std::vector<int64_t>> partition_targets(LeakFinder& finder, int64_t batch_size) {
  std::vector<bool> affected(batch_size, false);
  try {
    for (const std::vector<int64_t>& side : bit_partitions(batch_size)) {
      for (int64_t i : finder.targets_of(side)) affected[i] = true;
    }
  } catch (const std::exception&) {
    return std::nullopt;  // an op without a double backward: the caller falls back on VJPs
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batch_size; ++i) {
    if (affected[i]) out.push_back(i);
  }
  return out;
}

}  // namespace psg4j

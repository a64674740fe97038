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
#include <memory>
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
  const bool samples_first =
      output_dim == 0 && std::all_of(batch.targets.begin(), batch.targets.end(), [&](const at::Tensor& t) {
        return normalized_dim(t, batch.target_batch_dim, "a target") == 0;
      });
  if (reduction == Reduction::Sum && samples_first) {
    if (std::optional<at::Tensor> direct = per_sample_sum_losses(loss, output, batch.targets)) return *direct;
  }
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

// Σᵢ wₖᵢ·gᵢ for each projection k, by backward of Σᵢ wₖᵢ·Lᵢ: per parameter, K flat gradients as
// autograd returns them (undefined where the loss does not reach the parameter), not copied: a
// float one is read as float by the judge (a double copy of every projection was, with its page
// faults, a fifth of a float-first check on ResNet-18-GN), another precision cast to double.
using ProjectedReference = std::vector<at::Tensor>;  // [K] of [numel] each

std::vector<ProjectedReference> projected_reference(const at::Tensor& losses, const std::vector<at::Tensor>& leaves,
                                                    const at::Tensor& weights, bool keep_graph, int64_t* backwards) {
  const int64_t projections = weights.size(0);
  std::vector<ProjectedReference> out(leaves.size());
  for (int64_t k = 0; k < projections; ++k) {
    const at::Tensor grad_output = weights[k].to(losses.options());  // exact: the weights are floats
    const bool retain = keep_graph || k + 1 < projections;
    std::vector<at::Tensor> grads = torch::autograd::grad({losses}, leaves, {grad_output}, retain,
                                                          /*create_graph=*/false, /*allow_unused=*/true);
    ++*backwards;
    for (size_t p = 0; p < leaves.size(); ++p) {
      at::Tensor flat;
      if (grads[p].defined()) {
        const at::ScalarType type = grads[p].scalar_type();
        flat = grads[p].detach().reshape({-1}).to(type == at::kFloat ? at::kFloat : at::kDouble).contiguous();
      }
      out[p].push_back(flat);
    }
  }
  return out;
}

// Note [Sketch zones in one pass]
// A zone is decided element by element over K·n values, n a parameter's size. Written as tensor
// arithmetic it allocated about ten [K, n] double temporaries per parameter, and their first-touch
// page faults and unmapping were most of a sketch's time on the CPU (perf, mlp at B = 32: the
// judging ~40 % and the kernel's page-fault paths ~30 % of the checking thread). So on the CPU the
// candidate's projections, its squares and magnitudes are accumulated block by block (kBlock
// elements, their K + 2 accumulators in cache while the samples stream by, four samples per pass)
// and each block is judged at once: nothing of size n is allocated. The rounding level (a median)
// has to be known before any element is judged, so it is taken first, over at most kRoundingSample
// elements in evenly spaced runs of kBlock — every element of a parameter that small, which is then
// judged from the accumulators that pass kept rather than read twice; a larger parameter's
// candidate is read 1 + kRoundingSample / n times. The tensor form stays for other devices; both
// apply the formulas of sketch.h.
constexpr int64_t kBlock = 2048;
constexpr int64_t kRoundingSample = 32 * kBlock;

// What every element's thresholds are made of.
struct ZoneTerms {
  double batch_size, atol, rtol;
  double rtol_bound;                 // rtol' = rtol / (1 - rtol): allclose's aggregate bound
  std::vector<double> w_min, w_max;  // per projection, min and max |wₖᵢ| over the samples

  ZoneTerms(const at::Tensor& weights, const Tolerance& tolerance)
      : batch_size(static_cast<double>(weights.size(1))),
        atol(tolerance.atol),
        rtol(tolerance.rtol),
        rtol_bound(tolerance.rtol / (1.0 - std::min(tolerance.rtol, 0.5))) {
    const at::Tensor magnitudes = weights.abs().to(at::kCPU, at::kDouble).contiguous();
    const at::Tensor lows = std::get<0>(magnitudes.min(1)), highs = std::get<0>(magnitudes.max(1));
    w_min.assign(lows.const_data_ptr<double>(), lows.const_data_ptr<double>() + lows.numel());
    w_max.assign(highs.const_data_ptr<double>(), highs.const_data_ptr<double>() + highs.numel());
  }

  // An element's typical tolerance: what allclose allows one sample of root-mean-square size.
  double typical(double squares) const { return std::sqrt(squares / batch_size) * rtol + atol; }
};

// The candidate's side of elements [start, start + len): Σᵢ wₖᵢ·Gᵢₑ for every k (row k at
// `projected` + k·stride), Σᵢ Gᵢₑ² and Σᵢ |Gᵢₑ|, accumulated in double, four samples per pass (their sum
// formed first, in a fixed order, then added: a quarter of the accumulators' loads and stores,
// which bound the walk) and the rest one by one. The same order on every machine: the clones below
// differ in vector width only, never in the order of operations (no FMA contraction).
template <typename T>
[[gnu::always_inline]] inline void accumulate_chunk(const T* g, int64_t batch_size, int64_t n, int64_t start,
                                                    int64_t len, const double* w, int64_t projections,
                                                    double* projected, int64_t stride, double* squares,
                                                    double* magnitudes) {
  for (int64_t k = 0; k < projections; ++k) std::fill(projected + k * stride, projected + k * stride + len, 0.0);
  std::fill(squares, squares + len, 0.0);
  std::fill(magnitudes, magnitudes + len, 0.0);
  int64_t i = 0;
  for (; i + 4 <= batch_size; i += 4) {
    const T* r0 = g + i * n + start;
    const T* r1 = r0 + n;
    const T* r2 = r1 + n;
    const T* r3 = r2 + n;
#pragma omp simd
    for (int64_t e = 0; e < len; ++e) {
      const double v0 = static_cast<double>(r0[e]), v1 = static_cast<double>(r1[e]);
      const double v2 = static_cast<double>(r2[e]), v3 = static_cast<double>(r3[e]);
      squares[e] += (v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3);
      magnitudes[e] += (std::abs(v0) + std::abs(v1)) + (std::abs(v2) + std::abs(v3));
    }
    for (int64_t k = 0; k < projections; ++k) {
      const double* wk = w + k * batch_size + i;
      const double w0 = wk[0], w1 = wk[1], w2 = wk[2], w3 = wk[3];
      double* acc = projected + k * stride;
#pragma omp simd
      for (int64_t e = 0; e < len; ++e) {
        acc[e] += (w0 * static_cast<double>(r0[e]) + w1 * static_cast<double>(r1[e])) +
                  (w2 * static_cast<double>(r2[e]) + w3 * static_cast<double>(r3[e]));
      }
    }
  }
  for (; i < batch_size; ++i) {
    const T* row = g + i * n + start;
#pragma omp simd
    for (int64_t e = 0; e < len; ++e) {
      const double v = static_cast<double>(row[e]);
      squares[e] += v * v;
      magnitudes[e] += std::abs(v);
    }
    for (int64_t k = 0; k < projections; ++k) {
      const double wk = w[k * batch_size + i];
      double* acc = projected + k * stride;
#pragma omp simd
      for (int64_t e = 0; e < len; ++e) acc[e] += wk * static_cast<double>(row[e]);
    }
  }
}

// A block walked in chunks of kChunk elements, all samples each: the K + 2 accumulators of a
// chunk stay in L1 while the samples stream by (a whole block's, 64 kB at K = 2, did not). Each
// element's sums are formed in the same order either way.
constexpr int64_t kChunk = 512;

template <typename T>
[[gnu::always_inline]] inline void accumulate_block_body(const T* g, int64_t batch_size, int64_t n, int64_t start,
                                                         int64_t len, const double* w, int64_t projections,
                                                         double* projected, double* squares, double* magnitudes) {
  for (int64_t c = 0; c < len; c += kChunk) {
    accumulate_chunk(g, batch_size, n, start + c, std::min(kChunk, len - c), w, projections, projected + c, len,
                     squares + c, magnitudes + c);
  }
}

// An AVX2 clone where the CPU has it (chosen once, at load: 1.5x the SSE2 walk on the suite's mlp).
__attribute__((target_clones("avx2", "default"))) void accumulate_block_of(
    const float* g, int64_t batch_size, int64_t n, int64_t start, int64_t len, const double* w, int64_t projections,
    double* projected, double* squares, double* magnitudes) {
  accumulate_block_body(g, batch_size, n, start, len, w, projections, projected, squares, magnitudes);
}

__attribute__((target_clones("avx2", "default"))) void accumulate_block_of(
    const double* g, int64_t batch_size, int64_t n, int64_t start, int64_t len, const double* w, int64_t projections,
    double* projected, double* squares, double* magnitudes) {
  accumulate_block_body(g, batch_size, n, start, len, w, projections, projected, squares, magnitudes);
}

// A residual's place in the median's order, as median(nan_to_num(x, nan=inf)) orders it: NaN as
// +inf, +inf as the largest finite double.
double order_value(double value) {
  if (std::isnan(value)) return std::numeric_limits<double>::max();
  return std::min(value, std::numeric_limits<double>::max());
}

// One projection's elements of a block against their thresholds: how many are outside the pass
// zone and how many outside the fail zone (a NaN residual is outside both), how many ratios
// residual / P are NaN, and the largest of the others (+inf where P is not positive and the
// residual is; 0 where neither is). Written without
// branches so that the loop vectorizes (perf, ResNet-18-GN's in-loop check: the scalar form, with a
// square root per element and projection, was a third of the check): the per-element terms come
// precomputed, and the clones differ in vector width only, never in the order of operations.
struct ProjectionZones {
  int64_t over_pass = 0, over_fail = 0, nan = 0;
  double worst = 0.0;  // over the ratios that are not NaN
};

template <typename R>
[[gnu::always_inline]] inline ProjectionZones judge_projection_body(const double* proj, const R* ref,
                                                                   const double* typical_tolerance,
                                                                   const double* fail_terms, int64_t len,
                                                                   double fraction, double floor, double w_min,
                                                                   double w_max) {
  int64_t over_pass = 0, over_fail = 0, nan = 0;
  double worst = 0.0;
#pragma omp simd reduction(+ : over_pass, over_fail, nan) reduction(max : worst)
  for (int64_t e = 0; e < len; ++e) {
    const double residual = std::abs(proj[e] - (ref ? static_cast<double>(ref[e]) : 0.0));
    const double pass = w_min * std::max(typical_tolerance[e] * fraction, floor);
    const double fail = w_max * fail_terms[e] + pass;
    over_pass += residual <= pass ? 0 : 1;
    over_fail += residual <= fail ? 0 : 1;
    const double ratio =
        pass > 0 ? residual / pass : (residual > 0 ? std::numeric_limits<double>::infinity() : 0.0);
    nan += ratio != ratio ? 1 : 0;
    worst = worst > ratio ? worst : ratio;
  }
  return {over_pass, over_fail, nan, worst};
}

__attribute__((target_clones("avx2", "default"))) ProjectionZones judge_projection(
    const double* proj, const float* ref, const double* typical_tolerance, const double* fail_terms, int64_t len,
    double fraction, double floor, double w_min, double w_max) {
  return judge_projection_body(proj, ref, typical_tolerance, fail_terms, len, fraction, floor, w_min, w_max);
}

__attribute__((target_clones("avx2", "default"))) ProjectionZones judge_projection(
    const double* proj, const double* ref, const double* typical_tolerance, const double* fail_terms, int64_t len,
    double fraction, double floor, double w_min, double w_max) {
  return judge_projection_body(proj, ref, typical_tolerance, fail_terms, len, fraction, floor, w_min, w_max);
}

// Judges blocks against the pass fraction f (sketch.h's min(ρ, κ·s)), the zone's flags and the worst ratio
// accumulating over them.
struct ZoneWalk {
  bool all_pass = true, all_within_fail = true;
  double worst = 0.0;
  std::vector<double> typical_tolerance = std::vector<double>(kBlock), fail_terms = std::vector<double>(kBlock);

  template <typename R>
  void judge(const ZoneTerms& terms, double fraction, const double* projected, const double* squares,
             const double* magnitudes, const std::vector<const R*>& reference, int64_t start, int64_t len) {
    const double fail_floor = terms.batch_size * terms.atol * (1.0 + terms.rtol_bound);
    for (int64_t e = 0; e < len; ++e) {
      typical_tolerance[e] = terms.typical(squares[e]);
      fail_terms[e] = magnitudes[e] * terms.rtol_bound + fail_floor;
    }
    const int64_t projections = static_cast<int64_t>(terms.w_min.size());
    for (int64_t k = 0; k < projections; ++k) {
      const ProjectionZones zones = judge_projection(
          projected + k * len, reference[k] ? reference[k] + start : nullptr, typical_tolerance.data(),
          fail_terms.data(), len, fraction, 0.5 * terms.atol, terms.w_min[k], terms.w_max[k]);
      all_pass = all_pass && zones.over_pass == 0;
      all_within_fail = all_within_fail && zones.over_fail == 0;
      // As the report gives the ratio: the largest double for a NaN ratio, or a positive residual
      // over a zero threshold.
      worst = std::max(worst, zones.nan > 0 ? std::numeric_limits<double>::max()
                                            : std::min(zones.worst, std::numeric_limits<double>::max()));
    }
  }
};

template <typename T, typename R>
SketchVerdict judge_on_host(const T* g, int64_t batch_size, int64_t n, const at::Tensor& weights,
                            const ProjectedReference& reference_tensors, const Tolerance& tolerance) {
  const ZoneTerms terms(weights, tolerance);
  const int64_t projections = weights.size(0);
  const at::Tensor w_tensor = weights.to(at::kCPU, at::kDouble).contiguous();
  const double* w = w_tensor.const_data_ptr<double>();
  std::vector<const R*> reference;
  for (const at::Tensor& r : reference_tensors) reference.push_back(r.defined() ? r.const_data_ptr<R>() : nullptr);

  // The rounding level s: the (lower) median of residual / (min|w|·T_e) over the sampled elements
  // that some sample's gradient reaches.
  const bool whole = n <= kRoundingSample;
  const int64_t runs = whole ? (n + kBlock - 1) / kBlock : kRoundingSample / kBlock;
  // The accumulators: a small parameter's all kept ([K, len] per block, then squares, then
  // magnitudes), judged without a second read; a larger one's one block at a time.
  const int64_t kept = whole ? n : kBlock;
  // Uninitialized: every block's accumulators are zeroed where the block is walked.
  const std::unique_ptr<double[]> store(new double[static_cast<size_t>((projections + 2) * kept)]);
  struct Slots {
    double *projected, *squares, *magnitudes;
  };
  auto slots = [&](int64_t start) {
    const int64_t at = whole ? start : 0;
    return Slots{store.get() + projections * at, store.get() + projections * kept + at,
                 store.get() + (projections + 1) * kept + at};
  };
  std::vector<double> scaled;
  scaled.reserve(static_cast<size_t>(projections * std::min(n, kRoundingSample)));
  for (int64_t r = 0; r < runs; ++r) {
    const int64_t start = whole ? r * kBlock : (n - kBlock) * r / (runs - 1);
    const int64_t len = std::min(kBlock, n - start);
    const Slots block = slots(start);
    accumulate_block_of(g, batch_size, n, start, len, w, projections, block.projected, block.squares, block.magnitudes);
    for (int64_t e = 0; e < len; ++e) {
      if (!(block.squares[e] > 0)) continue;
      const double typical_tolerance = terms.typical(block.squares[e]);
      for (int64_t k = 0; k < projections; ++k) {
        const double ref = reference[k] ? static_cast<double>(reference[k][start + e]) : 0.0;
        scaled.push_back(order_value(std::abs(block.projected[k * len + e] - ref) /
                                     (terms.w_min[k] * typical_tolerance)));
      }
    }
  }
  double level = 0.0;
  if (!scaled.empty()) {
    const auto middle = scaled.begin() + static_cast<std::ptrdiff_t>((scaled.size() - 1) / 2);
    std::nth_element(scaled.begin(), middle, scaled.end());
    level = *middle;
  }
  const double fraction = std::min(kSketchPassFraction, kSketchNoiseMultiplier * level);

  ZoneWalk walk;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t len = std::min(kBlock, n - start);
    const Slots block = slots(start);
    if (!whole) {
      accumulate_block_of(g, batch_size, n, start, len, w, projections, block.projected, block.squares,
                          block.magnitudes);
    }
    walk.judge(terms, fraction, block.projected, block.squares, block.magnitudes, reference, start, len);
  }
  SketchVerdict verdict;
  verdict.zone = walk.all_pass ? SketchZone::Pass : walk.all_within_fail ? SketchZone::Undecided : SketchZone::Fail;
  verdict.residual_ratio = walk.worst;
  return verdict;
}

// The same on the candidate's device, as tensor arithmetic over [K, n].
SketchVerdict judge_on_device(const at::Tensor& candidate, const ProjectedReference& reference_tensors,
                              const at::Tensor& weights, const Tolerance& tolerance) {
  const int64_t batch_size = candidate.size(0);
  const at::Tensor g = candidate.detach().reshape({batch_size, -1}).to(at::kDouble);
  const at::Tensor projected = weights.to(g.device()).matmul(g);
  const at::Tensor squares = g.square().sum(0);
  const at::Tensor candidate_magnitudes = g.abs().sum(0);
  std::vector<at::Tensor> rows;
  for (const at::Tensor& r : reference_tensors) {
    rows.push_back(r.defined() ? r.to(g.device(), at::kDouble) : at::zeros({g.size(1)}, g.options()));
  }
  const at::Tensor reference = at::stack(rows);
  const at::Tensor magnitudes = weights.abs().to(g.device());
  const at::Tensor w_max = std::get<0>(magnitudes.max(1, /*keepdim=*/true));
  const at::Tensor w_min = std::get<0>(magnitudes.min(1, /*keepdim=*/true));
  const double b = static_cast<double>(batch_size);
  const double rtol = tolerance.rtol / (1.0 - std::min(tolerance.rtol, 0.5));
  const at::Tensor residual = (projected - reference).abs();
  const at::Tensor typical_tolerance = ((squares / b).sqrt() * tolerance.rtol + tolerance.atol).unsqueeze(0);
  const at::Tensor scaled = residual / (w_min * typical_tolerance);
  const at::Tensor informative = scaled.masked_select(squares.gt(0).unsqueeze(0).expand_as(scaled));
  const double level = informative.numel() == 0
                           ? 0.0
                           : at::nan_to_num(informative, std::numeric_limits<double>::infinity()).median().item<double>();
  const double fraction = std::min(kSketchPassFraction, kSketchNoiseMultiplier * level);
  const at::Tensor pass = w_min * at::clamp_min(typical_tolerance * fraction, 0.5 * tolerance.atol);
  const at::Tensor fail = w_max * (candidate_magnitudes.unsqueeze(0) * rtol + b * tolerance.atol * (1.0 + rtol)) + pass;
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

// The zone of one parameter: every element of every projection against its pass threshold P and
// its fail threshold F (sketch.h; Note [Sketch zones in one pass]).
SketchVerdict judge(const at::Tensor& candidate, const ProjectedReference& reference, const at::Tensor& weights,
                    const Tolerance& tolerance) {
  if (!candidate.device().is_cpu()) return judge_on_device(candidate, reference, weights, tolerance);
  const int64_t batch_size = candidate.size(0);
  const at::ScalarType type = candidate.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor g = candidate.detach().to(type).contiguous();
  const int64_t n = g.numel() / std::max<int64_t>(batch_size, 1);
  // The reference's K projections share one precision (projected_reference): float or double.
  const bool float_reference = std::any_of(reference.begin(), reference.end(), [](const at::Tensor& r) {
    return r.defined() && r.scalar_type() == at::kFloat;
  });
  SketchVerdict verdict;
  AT_DISPATCH_FLOATING_TYPES(type, "psg4j_sketch_judge", [&] {
    verdict = float_reference
                  ? judge_on_host<scalar_t, float>(g.const_data_ptr<scalar_t>(), batch_size, n, weights, reference,
                                                   tolerance)
                  : judge_on_host<scalar_t, double>(g.const_data_ptr<scalar_t>(), batch_size, n, weights, reference,
                                                    tolerance);
  });
  return verdict;
}

// The batched forward the reference projections are taken through (Note [Float first]).
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

// The model as it is, in its own precision.
ForwardGraph native_forward(const Model& model, const Batch& batch, const TrainableParameters& parameters) {
  ForwardGraph graph;
  for (const TrainableParameter& p : parameters) graph.leaves.push_back(p.tensor);
  graph.batch = batch;
  graph.output = forward_or_explain(model, [&] { return model.forward(copies_of(batch.inputs)); });  // a forward may write into its inputs
  graph.in_double = graph.output.scalar_type() == at::kDouble;
  return graph;
}

// The model in double: every tensor its forward reads cast, frozen parameters and buffers included,
// and its floating inputs (model_variants.h). None for a model that makes float tensors of its own
// (a constant, a tensor its closure keeps): it runs in its precision only.
std::optional<ForwardGraph> double_forward(const Model& model, const Batch& batch) {
  try {
    ForwardGraph graph;
    const std::shared_ptr<Model> cast = cast_model(model, at::kDouble);
    for (const TrainableParameter& p : cast->parameters()) graph.leaves.push_back(p.tensor);
    graph.batch = cast_batch(batch, at::kDouble);
    graph.output = cast->forward(copies_of(graph.batch.inputs));
    graph.in_double = graph.output.scalar_type() == at::kDouble;
    if (graph.in_double) return graph;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// Where the reference's projections come from: one vector of per-sample losses per source
// reduction, backpropagated once per projection, and the weights each reduction's candidate is
// projected with.
struct ReductionPlan {
  Reduction reduction;
  size_t source;       // index into the sources
  at::Tensor weights;  // [K, B], the candidate's projection weights
};

// Per source, per parameter: Σᵢ wₖᵢ·gᵢ through `graph`, for the parameters `wanted` (the others
// left empty).
std::vector<std::vector<ProjectedReference>> project(const ForwardGraph& graph, const Loss& loss, int64_t output_dim,
                                                     const std::vector<Reduction>& sources, const at::Tensor& weights,
                                                     const std::vector<bool>& wanted, int64_t* backwards) {
  std::vector<at::Tensor> leaves;
  std::vector<size_t> taken;
  for (size_t p = 0; p < graph.leaves.size(); ++p) {
    if (wanted[p]) {
      leaves.push_back(graph.leaves[p]);
      taken.push_back(p);
    }
  }
  std::vector<std::vector<ProjectedReference>> references(sources.size(),
                                                          std::vector<ProjectedReference>(graph.leaves.size()));
  if (leaves.empty()) return references;
  for (size_t s = 0; s < sources.size(); ++s) {
    const at::Tensor losses = per_sample_losses(loss, graph.output, output_dim, graph.batch, sources[s]);
    std::vector<ProjectedReference> got =
        projected_reference(losses, leaves, weights, /*keep_graph=*/s + 1 < sources.size(), backwards);
    for (size_t j = 0; j < taken.size(); ++j) references[s][taken[j]] = std::move(got[j]);
  }
  return references;
}

}  // namespace

// Note [Float first]
// The projections cost one batched forward and K backwards of the reference. In double they are
// exact to the candidate's rounding, but on the CPU a double backward of a convolution or an
// attention block costs several float ones (no oneDNN, half the SIMD width). In float, the
// reference's own rounding over the B samples it sums is a sizeable fraction of a typical tolerance
// T_e (ResNet-18-GN at B = 32, rtol 1e-4: up to 0.7 T_e), so the rounding level s, and with it the
// pass window P, grows towards its cap ρ·T_e: an element wrong by M typical tolerances then passes a
// projection with probability up to 1 / M, against ~κ·s_double / M in double. Exact mode's verdict
// near the tolerance is only resolved in double, so double stays the default; float first is the
// caller's choice (SketchPrecision::FloatFirst) for a check screening every step: the model projected
// in its own float precision, its passes kept, its fails sent to the reference, and only what is
// undecided in float projected again in double (one forward and K backwards that differentiate those
// parameters only) and judged as a double sketch is. The zones' formulas do not change, only s.

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
  const bool float_first = options.precision == SketchPrecision::FloatFirst;
  std::optional<ForwardGraph> graph = float_first ? std::nullopt : double_forward(model, batch);
  if (!graph) graph = native_forward(model, batch, parameters);
  result.cost.forwards = 1;
  result.cost.float_first = float_first && !graph->in_double;
  result.cost.in_double = graph->in_double;
  const int64_t output_dim = require_samples_dim(graph->output, batch.batch_dim, batch_size, "model's output");

  // Built-in losses: the mean candidate is projected with wᵢ·nᵢ, whose reference projection is
  // the sum losses' with weights wᵢ: one set of backwards serves both reductions.
  std::vector<Reduction> sources;
  std::vector<ReductionPlan> plans;
  const std::optional<at::Tensor> rescaling = mean_rescaling(loss, graph->output, batch, batch_size);
  for (const auto& [reduction, candidate] : candidates) {
    const bool shared = rescaling && reduction == Reduction::Mean;
    const Reduction taken = shared ? Reduction::Sum : reduction;
    const size_t source = static_cast<size_t>(std::find(sources.begin(), sources.end(), taken) - sources.begin());
    if (source == sources.size()) sources.push_back(taken);
    plans.push_back({reduction, source, shared ? weights * rescaling->unsqueeze(0) : weights});
  }
  std::vector<std::vector<ProjectedReference>> references =
      project(*graph, loss, output_dim, sources, weights, std::vector<bool>(parameters.size(), true),
              &result.cost.backwards);
  graph.reset();

  // The float pass keeps its passes and sends its fails to the reference; the rest is judged
  // again from double projections where the model runs in double, else from the float ones with ρ.
  std::vector<std::vector<ComparedCandidate>> retried(plans.size());
  if (result.cost.float_first) {
    std::vector<bool> wanted(parameters.size(), false);
    for (size_t r = 0; r < plans.size(); ++r) {
      for (const ComparedCandidate& c : compared[r]) {
        const SketchVerdict verdict = judge(c.candidate, references[plans[r].source][c.parameter], plans[r].weights,
                                            tolerance);
        result.comparisons[r].params[c.entry].sketch = verdict;
        if (verdict.zone == SketchZone::Undecided) {
          retried[r].push_back(c);
          wanted[c.parameter] = true;
        }
      }
    }
    if (std::find(wanted.begin(), wanted.end(), true) != wanted.end()) {
      references.clear();  // the float projections are judged; the double ones replace them
      if (std::optional<ForwardGraph> in_double = double_forward(model, batch)) {
        references = project(*in_double, loss, output_dim, sources, weights, wanted, &result.cost.backwards);
        ++result.cost.forwards;
        result.cost.in_double = true;
        for (const auto& again : retried) result.cost.double_params += static_cast<int64_t>(again.size());
      } else {
        retried.assign(plans.size(), {});  // float is all there is: its undecided stay undecided
      }
    }
  } else {
    retried = compared;
  }

  // What the sketch does not pass goes to the reference: one pass (and one rounding measurement)
  // for every reduction.
  std::vector<Reduction> reductions;
  std::vector<std::vector<ComparedCandidate>> undecided(plans.size());
  std::vector<Comparison*> comparisons;
  for (size_t r = 0; r < plans.size(); ++r) {
    Comparison& comparison = result.comparisons[r];
    for (const ComparedCandidate& c : retried[r]) {
      comparison.params[c.entry].sketch =
          judge(c.candidate, references[plans[r].source][c.parameter], plans[r].weights, tolerance);
    }
    for (const ComparedCandidate& c : compared[r]) {
      if (comparison.params[c.entry].sketch->zone != SketchZone::Pass) undecided[r].push_back(c);
    }
    result.cost.exact_params += static_cast<int64_t>(undecided[r].size());
    reductions.push_back(plans[r].reduction);
    comparisons.push_back(&comparison);
  }
  references.clear();
  compare_exactly(model, batch, loss, reductions, parameters, undecided, tolerance, comparisons);
  return result;
}

}  // namespace psg4j

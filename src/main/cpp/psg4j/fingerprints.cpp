#include "psg4j/fingerprints.h"

#include <ATen/Dispatch.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <type_traits>

namespace psg4j {
namespace {

constexpr int64_t K = kFingerprintProjections;

// Where element q of gᵀ reshaped to [rows, cols] lies in g ([rows, cols], row-major): gᵀ is
// [cols, rows], so q is (b, a) = (q / rows, q % rows) there, g[a, b] here.
int64_t transposed_index(int64_t q, int64_t rows, int64_t cols) {
  return (q % rows) * cols + q / rows;
}

std::vector<int64_t> projected_indices(int64_t n, std::mt19937_64& generator) {
  std::vector<int64_t> indices;
  if (n <= kFingerprintElements) {
    indices.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) indices[k] = k;
    return indices;
  }
  // Drawn with replacement (a repeat only weighs its element twice), ascending for the reads.
  std::uniform_int_distribution<int64_t> element(0, n - 1);
  indices.resize(kFingerprintElements);
  for (int64_t& index : indices) index = element(generator);
  std::sort(indices.begin(), indices.end());
  return indices;
}

// Projections (Σ_s w[s,k]·x[idx[s]]) of one flat host array, and the sum of squares of every
// element (all n) and of the projected ones, in double.
template <typename T>
void project_host(const T* x, int64_t n, const std::vector<int64_t>& idx, const std::vector<double>& w,
                  double* projections, double* norm, double* projected_norm) {
  double acc[K] = {0, 0, 0, 0};
  double projected_squares = 0;
  for (size_t s = 0; s < idx.size(); ++s) {
    const double v = static_cast<double>(x[idx[s]]);
    projected_squares += v * v;
    const double* ws = w.data() + s * K;
    for (int64_t k = 0; k < K; ++k) acc[k] += ws[k] * v;
  }
  for (int64_t k = 0; k < K; ++k) projections[k] = acc[k];
  if (projected_norm != nullptr) *projected_norm = std::sqrt(projected_squares);
  if (norm != nullptr) {
    using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
    // Float lanes in blocks, summed in double: vectorized, and exact enough for a tolerance.
    double squares = 0;
    constexpr int64_t kBlock = 4096;
    for (int64_t begin = 0; begin < n; begin += kBlock) {
      const int64_t end = std::min(n, begin + kBlock);
      Acc block = 0;
#pragma omp simd reduction(+ : block)
      for (int64_t e = begin; e < end; ++e) {
        const Acc v = static_cast<Acc>(x[e]);
        block += v * v;
      }
      squares += static_cast<double>(block);
    }
    *norm = std::sqrt(squares);
  }
}

// One sample's fingerprint fields of one tensor: its K projections (by `idx`), and optionally its
// norms. Host float/double tensors are read in place; others go through a contiguous double copy
// on the host (the fingerprints are small; an accelerator's tensor is copied once per sample).
void project(const at::Tensor& tensor, const std::vector<int64_t>& idx, const std::vector<double>& w,
             double* projections, double* norm, double* projected_norm) {
  // The usual case (a contiguous host float/double gradient) is read in place, with no new tensor.
  const bool in_place = tensor.device().is_cpu() && tensor.is_contiguous() &&
                        (tensor.scalar_type() == at::kFloat || tensor.scalar_type() == at::kDouble);
  const at::Tensor flat = in_place ? tensor : tensor.detach().to(at::kCPU, at::kDouble).contiguous();
  AT_DISPATCH_FLOATING_TYPES(flat.scalar_type(), "psg4j_fingerprint", [&] {
    project_host(flat.const_data_ptr<scalar_t>(), flat.numel(), idx, w, projections, norm, projected_norm);
  });
}

// Row i of a [B, K] or [B] double tensor.
double* row(const at::Tensor& t, int64_t i) { return t.data_ptr<double>() + i * (t.dim() == 2 ? t.size(1) : 1); }

}  // namespace

std::shared_ptr<const FingerprintPlan> fingerprint_plan(at::IntArrayRef parameter_shape) {
  auto plan = std::make_shared<FingerprintPlan>();
  plan->elements = c10::multiply_integers(parameter_shape);
  std::mt19937_64 generator(kFingerprintSeed ^ static_cast<uint64_t>(plan->elements));
  plan->indices = projected_indices(plan->elements, generator);
  std::normal_distribution<double> gaussian;
  plan->weights.resize(plan->indices.size() * K);
  for (double& w : plan->weights) w = gaussian(generator);
  if (parameter_shape.size() == 2) {
    for (int64_t q : plan->indices) {
      plan->transposed_indices.push_back(transposed_index(q, parameter_shape[0], parameter_shape[1]));
    }
  }
  return plan;
}

Fingerprints start_fingerprints(at::IntArrayRef parameter_shape, int64_t batch_size, const at::Device& device) {
  Fingerprints f;
  f.plan = fingerprint_plan(parameter_shape);
  const at::TensorOptions options = at::TensorOptions().dtype(at::kDouble).device(device);
  if (!device.is_cpu()) {
    const at::TensorOptions longs = at::TensorOptions().dtype(at::kLong);
    f.device_indices = at::tensor(f.plan->indices, longs).to(device);
    if (f.plan->has_transposed()) f.device_transposed_indices = at::tensor(f.plan->transposed_indices, longs).to(device);
    f.device_weights = at::tensor(f.plan->weights, at::kDouble).reshape({f.plan->projected(), K}).to(device);
  }
  f.candidate = at::zeros({batch_size, K}, options);
  f.reference = at::zeros({batch_size, K}, options);
  if (f.plan->has_transposed()) f.reference_transposed = at::zeros({batch_size, K}, options);
  f.candidate_norm = at::zeros({batch_size}, options);
  f.reference_norm = at::zeros({batch_size}, options);
  f.candidate_projected_norm = at::zeros({batch_size}, options);
  return f;
}

namespace {

// The projections [K] and the L2 norm over the projected elements of one flat device tensor,
// computed where it lies (the gather reads |S| elements, the product is [1, S] x [S, K]).
std::pair<at::Tensor, at::Tensor> project_on_device(const at::Tensor& tensor, const at::Tensor& indices,
                                                    const at::Tensor& weights) {
  const at::Tensor x = tensor.detach().reshape({-1}).index_select(0, indices).to(at::kDouble);
  return {at::matmul(x.unsqueeze(0), weights).squeeze(0), at::linalg_vector_norm(x, 2)};
}

// take_fingerprints for device tensors: every field written by index on the current stream.
void take_fingerprints_on_device(Fingerprints& f, int64_t i, const at::Tensor& candidate,
                                 const at::Tensor& reference, double reference_scale) {
  c10::NoGradGuard no_grad;
  const auto [c_projections, c_norm] = project_on_device(candidate, f.device_indices, f.device_weights);
  f.candidate.select(0, i).copy_(c_projections);
  f.candidate_norm.select(0, i).copy_(c_norm);
  f.candidate_projected_norm.select(0, i).copy_(c_norm);
  const auto [r_projections, r_norm] = project_on_device(reference, f.device_indices, f.device_weights);
  f.reference.select(0, i).copy_(r_projections * reference_scale);
  f.reference_norm.select(0, i).copy_(r_norm * std::abs(reference_scale));
  if (f.plan->has_transposed()) {
    const auto transposed = project_on_device(reference, f.device_transposed_indices, f.device_weights);
    f.reference_transposed.select(0, i).copy_(transposed.first * reference_scale);
  }
}

}  // namespace

void fingerprints_to_host(Fingerprints& f) {
  for (at::Tensor* t : {&f.candidate, &f.reference, &f.reference_transposed, &f.candidate_norm, &f.reference_norm,
                        &f.candidate_projected_norm}) {
    if (t->defined() && !t->device().is_cpu()) *t = t->cpu();
  }
  f.device_indices = at::Tensor();
  f.device_transposed_indices = at::Tensor();
  f.device_weights = at::Tensor();
}

void take_fingerprints(Fingerprints& f, int64_t i, const at::Tensor& candidate, const at::Tensor& reference,
                       double reference_scale) {
  if (f.device_weights.defined()) {
    take_fingerprints_on_device(f, i, candidate, reference, reference_scale);
    return;
  }
  const FingerprintPlan& plan = *f.plan;
  // Norms over the projected elements only: a pass over every element costs as much as the
  // comparison itself on a large parameter (measured: a check of the suite's mlp 1.3-2x slower).
  project(candidate, plan.indices, plan.weights, row(f.candidate, i), nullptr, row(f.candidate_norm, i));
  *row(f.candidate_projected_norm, i) = *row(f.candidate_norm, i);
  double* r = row(f.reference, i);
  double* r_norm = row(f.reference_norm, i);
  project(reference, plan.indices, plan.weights, r, nullptr, r_norm);
  for (int64_t k = 0; k < K; ++k) r[k] *= reference_scale;
  *r_norm *= std::abs(reference_scale);
  if (plan.has_transposed()) {
    double* t = row(f.reference_transposed, i);
    project(reference, plan.transposed_indices, plan.weights, t, nullptr, nullptr);
    for (int64_t k = 0; k < K; ++k) t[k] *= reference_scale;
  }
}

}  // namespace psg4j

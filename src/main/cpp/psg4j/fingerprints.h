// Per-sample fingerprints ("say why a value is wrong"): a few fixed random projections
// and the L2 norm of each sample's candidate and reference gradient of a parameter, taken while the
// exact comparison streams, so that a failing parameter's likely cause (a constant factor, samples
// permuted, one gradient for every sample, a transposed matrix, zeros) can be recognized afterwards
// without keeping the reference (dev.psg4j.check.ValueDiagnoses reads them).
//
// Projection k of a sample's gradient g (flattened, n elements) is Σ_{s∈S} w_{s,k}·g[s] with
// w ~ N(0, 1) on a fixed set S of at most kFingerprintElements element indices (every element
// when n is that small; else drawn uniformly, sorted), and the norms are over S too: O(K·|S|) per
// sample whatever n (a pass over every element would cost as much as the comparison). Being linear, fingerprints compose: the projection of the batch mean
// of the reference is the mean of its projections. For a 2-D parameter [m, c] the reference is
// also projected as its transpose reshaped to [m, c] (element q of that is g[q % m, q / m]), which
// is what a sampler returns when it writes gᵀ into the parameter's layout.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

namespace psg4j {

constexpr int64_t kFingerprintProjections = 4;
constexpr int64_t kFingerprintElements = 1024;
constexpr uint64_t kFingerprintSeed = 0x9e3779b97f4a7c15ULL;

// Which elements are projected, with which weights, for one parameter shape (seed fixed).
struct FingerprintPlan {
  int64_t elements = 0;          // n, the parameter's numel
  std::vector<int64_t> indices;  // S, ascending
  // Where element S[s] of gᵀ-reshaped lies in g (2-D parameters only, else empty).
  std::vector<int64_t> transposed_indices;
  std::vector<double> weights;   // [|S|, K] row-major
  int64_t projected() const { return static_cast<int64_t>(indices.size()); }
  bool has_transposed() const { return !transposed_indices.empty(); }
};

std::shared_ptr<const FingerprintPlan> fingerprint_plan(at::IntArrayRef parameter_shape);

// One parameter's fingerprints, row i for sample i, all double on the CPU.
struct Fingerprints {
  std::shared_ptr<const FingerprintPlan> plan;
  at::Tensor candidate;                 // [B, K]
  at::Tensor reference;                 // [B, K]
  at::Tensor reference_transposed;      // [B, K], undefined unless plan->has_transposed()
  at::Tensor candidate_norm;            // [B], L2 over the projected elements S
  at::Tensor reference_norm;            // [B], L2 over S
  at::Tensor candidate_projected_norm;  // [B], equal to candidate_norm: the scale of the
                                        // projections' rounding, for their tolerance
  // On CUDA: the plan's indices and weights on the device, so that a sample's
  // fingerprints are taken there, no host read per sample; the fields above live on the device
  // until fingerprints_to_host.
  at::Tensor device_indices;             // [S] long
  at::Tensor device_transposed_indices;  // [S] long, undefined unless plan->has_transposed()
  at::Tensor device_weights;             // [S, K] double
};

Fingerprints start_fingerprints(at::IntArrayRef parameter_shape, int64_t batch_size,
                                const at::Device& device = at::kCPU);

// Brings fingerprints taken on a device to the host (one copy per field, after the pass); a
// no-op for host ones.
void fingerprints_to_host(Fingerprints& fingerprints);

// Fills row i from sample i's candidate and reference (× reference_scale, as compare_sample takes
// it). Safe to call concurrently for different samples.
void take_fingerprints(Fingerprints& fingerprints, int64_t i, const at::Tensor& candidate,
                       const at::Tensor& reference, double reference_scale = 1.0);

}  // namespace psg4j

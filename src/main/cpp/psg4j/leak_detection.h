// The gradient route of the batch-independence probe: exact, at 2⌈log₂B⌉ input-VJPs for every
// pair of samples. A VJP whose cotangent is supported on a set S of the output's samples (under
// fixed random weights, so nothing cancels) has a nonzero input gradient on sample j ∉ S exactly
// when some output in S depends on sample j: independent paths give exact zeros. Cotangents on
// the bit-partitions of the sample index (for each bit, the samples with it set, and the others)
// cover every pair j -> i, since two indices differ in some bit.
#pragma once

#include "psg4j/op_outputs.h"

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

namespace psg4j {

using Forward = std::function<at::Tensor(const std::vector<at::Tensor>&)>;

// A forward's output, still attached to its autograd graph, and the per-sample tensors it is
// differentiated with respect to: the float inputs and, for integer inputs (token ids), the first
// floating-point tensor computed from them that autograd tracks (an embedding's output).
struct DifferentiableForward {
  at::Tensor output;
  int64_t output_dim = 0;
  std::vector<at::Tensor> sources;
  std::vector<int64_t> source_dims;
  bool from_intermediate = false;  // a source is a tensor inside the forward, not an input
  std::vector<OpOutput> ops;       // the recorded op outputs (integer inputs, or when asked)
};

// Runs `forward` once with grad mode on. `output_dim` is where the output keeps its samples.
// `record_ops` keeps every op output (TorchScript: unoptimized, each op tracked by autograd).
DifferentiableForward differentiable_forward(const Forward& forward, const std::vector<at::Tensor>& inputs,
                                             int64_t batch_dim, int64_t batch_size, int64_t output_dim,
                                             bool record_ops = false);

// Input-VJPs of one differentiable forward, each with its cotangent on a set of samples.
class LeakFinder {
 public:
  // `tolerance`: an input gradient counts when above tolerance × the largest one of the same VJP.
  LeakFinder(const DifferentiableForward& forward, int64_t batch_size, double tolerance, uint64_t seed);

  // Whether the output is differentiable with respect to any source at all.
  bool usable() const;
  // The samples outside `targets` that the outputs of `targets` depend on: one VJP.
  std::vector<int64_t> sources_of(const std::vector<int64_t>& targets);
  // The transposed question: the samples outside `sources` whose outputs depend on one of
  // `sources`, as a product J v with tangents v on `sources` (a double backward of the VJP, whose
  // graph is built on the first call). Throws where an op has no double backward.
  std::vector<int64_t> targets_of(const std::vector<int64_t>& sources);
  // Backward passes run so far (each VJP, and each J v).
  int64_t vjps() const { return vjps_; }

 private:
  const DifferentiableForward& forward_;
  int64_t batch_size_;
  double tolerance_;
  at::Tensor weights_;
  at::Tensor dummy_cotangent_;                  // u of the VJP g(u) = uᵀ J, linear in u
  std::vector<at::Tensor> cotangent_gradients_;  // g(u), with its graph
  int64_t vjps_ = 0;
};

// What the bit-partition VJPs found.
struct PartitionFindings {
  std::vector<int64_t> sources;  // every sample some other sample's output depends on
  // Source -> the bits in which the targets it leaks into differ from it; a source with one
  // target therefore names it: target = source XOR bits.
  std::map<int64_t, uint64_t> differing_bits;
  // Source -> the target its bits name, where that is a sample of the batch.
  std::map<int64_t, int64_t> decoded_targets;
};

// The 2⌈log₂B⌉ bit-partition VJPs.
PartitionFindings partition_passes(LeakFinder& finder, int64_t batch_size);

// The same partitions on the target side (LeakFinder::targets_of): every sample whose output
// depends on another sample, exactly, for 2⌈log₂B⌉ + 1 backward passes; none where an op of the
// model has no double backward.
std::optional<std::vector<int64_t>> partition_targets(LeakFinder& finder, int64_t batch_size);

}  // namespace psg4j

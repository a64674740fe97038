// The microbatch reference (DESIGN §1): each sample alone in a batch, forward, loss, autograd::grad.
#pragma once

#include "psg4j/batch.h"
#include "psg4j/loss.h"
#include "psg4j/model.h"

#include <functional>

namespace psg4j {

// What a per-sample gradient is taken of.
struct Problem {
  const Model& model;
  const Batch& batch;
  const Loss& loss;
  Reduction reduction;
};

// Sample i's gradient for each of `parameters` (the model's trainable ones, in that order).
// A parameter the sample's loss does not reach gets zeros.
std::vector<at::Tensor> sample_gradient(const Problem& problem, const NamedTensors& parameters,
                                        int64_t i);

// Refuses, before any gradient is taken, targets of samples [begin, end) that the loss cannot
// take (a cross_entropy class index out of range), naming the first such sample; one forward of
// sample `begin` tells the number of classes.
void check_targets(const Problem& problem, int64_t begin, int64_t end);

// Where samples run. On the CPU: `workers` threads (0: the caller's intra-op thread count), each
// running its samples' ops on one intra-op thread (see sample_workers.h). On CUDA (the batch's
// device): `workers` host threads (0: a default for the device), each launching its samples on a
// CUDA stream of its own, the comparison queued behind them on that stream; with `cuda_graphs`,
// one sample's forward + backward is captured once per worker and replayed for every sample
// (eager where capture fails: Comparison::reference_route says which ran and why).
struct Spread {
  int workers = 0;
  bool cuda_graphs = false;
};


// The reduction-k gradient of one sample: `grads`, times `scale` (1 unless it is the sum
// gradient standing in for the mean one: the mean of a one-sample batch is a known multiple of
// its sum for the built-in losses, and one pass then serves both reductions).
struct ReferenceGradient {
  size_t reduction;  // index into the reductions asked
  const std::vector<at::Tensor>& grads;
  double scale;
};

using ReductionVisitor = std::function<void(int64_t sample, const ReferenceGradient& gradient)>;

// Streams every sample's gradient under each of `reductions` to `visit`, samples spread as
// `spread` says, so the reference holds O(|θ|) per worker instead of B×|θ|. Where the sum and the
// mean are both asked and the loss is built in, one backward serves both (scale = what a mean
// gradient is of the sum one for that sample: 1/numel of its output for l1 and mse, 1 for sum,
// 1/(its targets not ignored) for cross_entropy, which has no such multiple when all are, NaN
// then: that sample takes a mean backward of its own); a custom loss takes one backward per
// reduction. `visit` runs concurrently, on the workers; sample order within a worker is rising.
// `grads` are valid during the visit only (with CUDA graphs they are the graph's static buffers,
// overwritten by its next replay): a visitor that keeps them copies them.
// On CUDA each visit runs with its worker's stream current: what it queues there is ordered after
// the gradient and before the caller's stream resumes. Returns how the reference ran (see
// Comparison::reference_route): "cpu workers", "cuda streams", "cuda graphs" or
// "cuda streams (<why no graphs>)".
std::string for_each_reference_gradient(const Model& model, const Batch& batch, const Loss& loss,
                                 const std::vector<Reduction>& reductions, const NamedTensors& parameters,
                                 const Spread& spread, const ReductionVisitor& visit);

// One way of computing a sample's reference: the model, the batch it runs on and the leaves it
// differentiates (one per parameter wanted, the model's own or a variant's: model_variants.h).
struct ReferenceSetup {
  const Model& model;
  const Batch& batch;
  const NamedTensors& leaves;
};

using PairVisitor =
    std::function<void(int64_t sample, const ReferenceGradient& first, const ReferenceGradient& second)>;

// For each of `samples` (rising), its gradient under each of `reductions` computed as `first` and
// as `second` (one problem two ways: in two precisions, say), both by the same worker; `visit`
// gets both once per sample and reduction, concurrently on the workers. Samples are spread over
// CPU sample workers on any device (few samples: no streams). The gradients are valid during the
// visit only.
void for_each_reference_pair(const ReferenceSetup& first, const ReferenceSetup& second, const Loss& loss,
                             const std::vector<Reduction>& reductions, const std::vector<int64_t>& samples,
                             const Spread& spread, const PairVisitor& visit);

using SampleVisitor = std::function<void(int64_t sample, const std::vector<at::Tensor>& grads)>;

// for_each_reference_gradient for the problem's one reduction.
void for_each_sample_gradient(const Problem& problem, const NamedTensors& parameters,
                              const SampleVisitor& visit, const Spread& spread = {});

// The reference as tensors [B, *shape], one per trainable parameter.
NamedTensors microbatch_gradients(const Problem& problem, const Spread& spread = {});

}  // namespace psg4j

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

using SampleVisitor = std::function<void(int64_t sample, const std::vector<at::Tensor>& grads)>;

// Streams every sample's gradient to `visit`, samples spread over at::get_num_threads() threads,
// so the reference holds O(|θ|) per thread instead of B×|θ|. `visit` runs concurrently.
void for_each_sample_gradient(const Problem& problem, const NamedTensors& parameters,
                              const SampleVisitor& visit);

// The reference as tensors [B, *shape], one per trainable parameter.
NamedTensors microbatch_gradients(const Problem& problem);

}  // namespace psg4j

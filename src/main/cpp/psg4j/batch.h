// A batch as psg4j sees it: the model inputs, the loss targets, and where the batch dimension is.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace psg4j {

struct Batch {
  std::vector<at::Tensor> inputs;
  std::vector<at::Tensor> targets;  // empty when the loss needs none
  int64_t batch_dim = 0;            // of every input; negative counts from the end
  int64_t target_batch_dim = 0;     // of every target

  // Checks dimensions and batch sizes and returns B. Throws a BadInput Error naming the tensor.
  int64_t validate() const;

  // Sample i alone, keeping its batch dimension of size 1 (a view, no copy).
  std::vector<at::Tensor> sample_inputs(int64_t i) const;
  std::vector<at::Tensor> sample_targets(int64_t i) const;
};

// `dim` of `t` counted from the front (a negative dimension counts from the end). Throws a
// BadInput Error naming `what` when `t` has no such dimension.
int64_t normalized_dim(const at::Tensor& t, int64_t dim, const std::string& what = "the tensor");

// Copies of `tensors`: what a forward gets when it must not be able to write into the caller's
// batch (a model may write into its inputs in place).
std::vector<at::Tensor> copies_of(const std::vector<at::Tensor>& tensors);

// The shape of a per-sample gradient of a parameter shaped `shape`: [batch_size, *shape].
std::vector<int64_t> batched_shape(int64_t batch_size, at::IntArrayRef shape);

}  // namespace psg4j

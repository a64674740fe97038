// The steps of torch.func's vmap and grad, in C++ (see torch/_functorch/vmap.py, eager_transforms.py
// and torch/csrc/functorch/init.cpp, whose Python bindings each step mirrors). While a level is
// pushed every ATen op is intercepted, so callers prepare plain tensors before pushing.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

namespace psg4j {

enum class Randomness { Error = 0, Different = 1, Same = 2 };

// _vmap_increment_nesting / _vmap_decrement_nesting as a scope. Pops on every path.
class VmapLevel {
 public:
  VmapLevel(int64_t batch_size, Randomness randomness);
  ~VmapLevel();
  VmapLevel(const VmapLevel&) = delete;
  VmapLevel& operator=(const VmapLevel&) = delete;

  int64_t id() const { return id_; }
  // _add_batch_dim: `tensor` seen per sample, its dimension `dim` vectorized away.
  at::Tensor add_batch_dim(const at::Tensor& tensor, int64_t dim) const;
  // Pops the level early; unbatch() results stay valid.
  void pop();

 private:
  int64_t id_;
  bool pushed_ = true;
};

// What a model sees for one sample under `vmap`: dimension `dim` of each tensor (negative counts
// from the end) vectorized away, then put back with size 1, so the model runs on a one-sample
// batch as in the reference.
std::vector<at::Tensor> one_sample_batches(const VmapLevel& vmap, const std::vector<at::Tensor>& tensors,
                                           int64_t dim);

// The physical tensor behind a result of a vmap level, and its batch dimension (none when the
// result does not depend on the batched inputs). Taken before the level is popped.
struct Unbatched {
  at::Tensor value;
  std::optional<int64_t> batch_dim;
};
Unbatched unbatch(const at::Tensor& result, int64_t level);
// _remove_batch_dim, after the level is gone: batch-first [B, *shape].
at::Tensor batch_first(const Unbatched& unbatched, int64_t batch_size);

// _grad_increment_nesting / _grad_decrement_nesting as a scope, with grad mode on inside (as
// torch.func.grad runs the function under enable_grad). Pops on every path.
class GradLevel {
 public:
  GradLevel();
  ~GradLevel();
  GradLevel(const GradLevel&) = delete;
  GradLevel& operator=(const GradLevel&) = delete;

  int64_t id() const { return id_; }
  // _wrap_for_grad + _create_differentiable: a tensor this level differentiates with respect to.
  at::Tensor differentiable(const at::Tensor& tensor) const;
  // _unwrap_for_grad: the gradient as the level below sees it.
  at::Tensor unwrap(const at::Tensor& tensor) const;

 private:
  bool previous_grad_mode_;
  int64_t id_;
};

}  // namespace psg4j

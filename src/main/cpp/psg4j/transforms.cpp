#include "psg4j/transforms.h"

#include "psg4j/batch.h"

#include <ATen/functorch/BatchedTensorImpl.h>
#include <ATen/functorch/DynamicLayer.h>
#include <ATen/functorch/TensorWrapper.h>
#include <c10/core/GradMode.h>

namespace psg4j {
namespace {

namespace ft = at::functorch;

ft::RandomnessType randomness_type(Randomness randomness) {
  switch (randomness) {
    case Randomness::Different: return ft::RandomnessType::Different;
    case Randomness::Same: return ft::RandomnessType::Same;
    case Randomness::Error: break;
  }
  return ft::RandomnessType::Error;
}

// Levels are lexically scoped: the one popped must be the one this scope pushed.
void pop_level(int64_t expected, ft::TransformType type) {
  const ft::DynamicLayer layer = ft::popDynamicLayerAndDeleteMetadata();
  TORCH_INTERNAL_ASSERT(layer.layerId() == expected && layer.key() == type,
                        "functorch level stack out of order");
}

}  // namespace

VmapLevel::VmapLevel(int64_t batch_size, Randomness randomness)
    : id_(ft::initAndPushDynamicLayer(ft::TransformType::Vmap, c10::SymInt(batch_size),
                                      randomness_type(randomness))) {}

// Destructors run while an exception unwinds, so they must not throw; an out-of-order stack
// there means a model pushed levels it never popped, and the first error is the one to report.
VmapLevel::~VmapLevel() {
  if (!pushed_) return;
  try {
    pop();
  } catch (...) {
  }
}

void VmapLevel::pop() {
  pushed_ = false;
  pop_level(id_, ft::TransformType::Vmap);
}

at::Tensor VmapLevel::add_batch_dim(const at::Tensor& tensor, int64_t dim) const {
  return ft::addBatchDim(tensor, dim, id_);
}

std::vector<at::Tensor> one_sample_batches(const VmapLevel& vmap, const std::vector<at::Tensor>& tensors,
                                           int64_t dim) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : tensors) {
    const int64_t d = normalized_dim(t, dim);
    out.push_back(vmap.add_batch_dim(t, d).unsqueeze(d));
  }
  return out;
}

Unbatched unbatch(const at::Tensor& result, int64_t level) {
  const ft::BatchedTensorImpl* batched = ft::maybeGetBatchedImpl(result);
  if (batched == nullptr || batched->level() != level) return {result, std::nullopt};
  return {batched->value(), batched->bdim()};
}

at::Tensor batch_first(const Unbatched& unbatched, int64_t batch_size) {
  if (unbatched.batch_dim) return unbatched.value.movedim(*unbatched.batch_dim, 0);
  // The same gradient for every sample (e.g. a bias under a sum loss): one copy per sample.
  return unbatched.value.unsqueeze(0).expand(batched_shape(batch_size, unbatched.value.sizes())).contiguous();
}

GradLevel::GradLevel()
    : previous_grad_mode_(c10::GradMode::is_enabled()),
      id_(ft::initAndPushDynamicLayer(ft::TransformType::Grad, std::nullopt, std::nullopt,
                                      previous_grad_mode_)) {
  c10::GradMode::set_enabled(true);
}

GradLevel::~GradLevel() {
  c10::GradMode::set_enabled(previous_grad_mode_);
  try {
    pop_level(id_, ft::TransformType::Grad);
  } catch (...) {
  }
}

at::Tensor GradLevel::differentiable(const at::Tensor& tensor) const {
  return ft::makeTensorWrapper(tensor, id_).requires_grad_();
}

at::Tensor GradLevel::unwrap(const at::Tensor& tensor) const {
  const ft::TensorWrapper* wrapper = ft::maybeGetTensorWrapper(tensor);
  if (wrapper == nullptr || wrapper->level() != id_) return tensor;
  return wrapper->value();
}

}  // namespace psg4j

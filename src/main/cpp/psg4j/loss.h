// The losses a check differentiates. Every loss is applied to a batch and reduced over it with
// `reduction`; the reference applies it to one-sample batches (DESIGN §1).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace psg4j {

enum class Reduction { Sum = 0, Mean = 1 };

enum class LossKind {
  L1 = 0,            // |out - target| (target zeros when none), Opacus's default
  MSE = 1,           // (out - target)^2
  CrossEntropy = 2,  // class-index targets, classes in dimension 1
  Sum = 3,           // sum of outputs; mean: that sum divided by the batch size
  Custom = 4,        // a caller's function
};

using CustomLoss =
    std::function<at::Tensor(const at::Tensor& output, const std::vector<at::Tensor>& targets,
                             Reduction reduction)>;

struct Loss {
  LossKind kind = LossKind::L1;
  CustomLoss custom;  // only for LossKind::Custom

  // The scalar loss of a batch of `batch_size` samples.
  at::Tensor operator()(const at::Tensor& output, const std::vector<at::Tensor>& targets,
                        Reduction reduction, int64_t batch_size) const;
};

// at::cross_entropy_loss's default ignore_index: targets equal to it count for nothing.
constexpr int64_t kIgnoreIndex = -100;

// What the mean loss of a one-sample batch is of its sum loss (so that one sum gradient serves
// both reductions): 1/numel of the output for l1 and mse, 1 for sum, 1/(the positions whose
// target is not ignored) for cross_entropy; NaN where there is no such multiple (a custom loss,
// a cross_entropy sample whose every position is ignored: its mean is 0/0).
double mean_per_sum(const Loss& loss, const at::Tensor& output, const std::vector<at::Tensor>& targets);

// For cross_entropy: refuses a target class index outside [0, C) other than ignore_index -100
// (C = output.size(1), the model's classes), naming the sample (first_sample plus its position
// along batch_dim of the targets) and the value. `targets` must be plain tensors: a check of
// values cannot run under vmap. Does nothing for the other losses.
void check_class_indices(const Loss& loss, const at::Tensor& output, const std::vector<at::Tensor>& targets,
                         int64_t batch_dim, int64_t first_sample);

// Each sample's sum loss, [B], from a batched output and targets whose samples lie along dimension
// 0: the built-in loss with reduction 'none', summed over each sample's elements — what the loss of
// that sample's one-sample batch is with reduction sum, without running the loss per sample (or
// under vmap, where cross_entropy's per-position form falls back to a loop over the samples whose
// backward writes a zero-filled copy of the whole output for each). Targets are validated as the
// batch's. Nullopt for a custom loss.
std::optional<at::Tensor> per_sample_sum_losses(const Loss& loss, const at::Tensor& output,
                                                const std::vector<at::Tensor>& targets);

std::string to_string(Reduction reduction);
std::string to_string(LossKind kind);

}  // namespace psg4j

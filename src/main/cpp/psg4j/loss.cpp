#include "psg4j/loss.h"

#include "psg4j/error.h"

#include <ATen/core/Reduction.h>

namespace psg4j {
namespace {

int64_t aten_reduction(Reduction reduction) {
  return reduction == Reduction::Sum ? at::Reduction::Sum : at::Reduction::Mean;
}

const at::Tensor& the_target(const std::vector<at::Tensor>& targets, LossKind kind) {
  if (targets.size() != 1) {
    bad_input("the " + to_string(kind) + " loss needs exactly one target tensor, got " +
              std::to_string(targets.size()) + ": pass targets (e.g. --target Y.pt)");
  }
  return targets[0];
}

at::Tensor target_or_zeros(const at::Tensor& output, const std::vector<at::Tensor>& targets,
                           LossKind kind) {
  return targets.empty() ? at::zeros_like(output) : the_target(targets, kind);
}

}  // namespace

at::Tensor Loss::operator()(const at::Tensor& output, const std::vector<at::Tensor>& targets,
                            Reduction reduction, int64_t batch_size) const {
  switch (kind) {
    case LossKind::L1:
      return at::l1_loss(output, target_or_zeros(output, targets, kind), aten_reduction(reduction));
    case LossKind::MSE:
      return at::mse_loss(output, target_or_zeros(output, targets, kind), aten_reduction(reduction));
    case LossKind::CrossEntropy: {
      const at::Tensor& target = the_target(targets, kind);
      if (at::isFloatingType(target.scalar_type())) {
        bad_input("cross_entropy takes class-index targets (an integer tensor), got dtype " +
                  std::string(c10::toString(target.scalar_type())) +
                  ": pass int64 class indices, or use the mse loss for real-valued targets");
      }
      return at::cross_entropy_loss(output, target.to(at::kLong), std::nullopt,
                                    aten_reduction(reduction));
    }
    case LossKind::Sum:
      return reduction == Reduction::Sum ? output.sum()
                                         : output.sum() / static_cast<double>(batch_size);
    case LossKind::Custom: {
      at::Tensor loss = custom(output, targets, reduction);
      if (!loss.defined() || loss.numel() != 1) {
        throw Error(ErrorKind::ModelFailure,
                    "the custom loss must return a scalar tensor, got " +
                        (loss.defined() ? "shape " + c10::str(loss.sizes()) : "nothing"));
      }
      return loss.reshape({});
    }
  }
  bad_input("unknown loss kind " + std::to_string(static_cast<int>(kind)));
}

std::string to_string(Reduction reduction) { return reduction == Reduction::Sum ? "sum" : "mean"; }

std::string to_string(LossKind kind) {
  switch (kind) {
    case LossKind::L1: return "l1";
    case LossKind::MSE: return "mse";
    case LossKind::CrossEntropy: return "cross_entropy";
    case LossKind::Sum: return "sum";
    case LossKind::Custom: return "custom";
  }
  return "unknown";
}

}  // namespace psg4j

#include "psg4j/loss.h"

#include "psg4j/error.h"

#include <ATen/core/Reduction.h>

#include <limits>

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

std::string dtype_of(const at::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

// mse and l1 compare the output with its target element by element: a target of another shape
// would be broadcast into another loss without a word, and an integer one fails in backward.
const at::Tensor& require_like_output(const at::Tensor& target, const at::Tensor& output, LossKind kind,
                                     const std::string& whose) {
  if (target.sizes() != output.sizes()) {
    bad_input("the " + to_string(kind) + " target has shape " + c10::str(target.sizes()) +
              " but the model's output has shape " + c10::str(output.sizes()) + whose +
              ": give targets shaped like the model's outputs (a target of another shape would be "
              "broadcast into another loss)");
  }
  if (!at::isFloatingType(target.scalar_type())) {
    bad_input("the " + to_string(kind) + " target has dtype " + dtype_of(target) +
              ": give floating-point targets (y.float()); class indices go with the cross_entropy loss");
  }
  return target;
}

at::Tensor target_or_zeros(const at::Tensor& output, const std::vector<at::Tensor>& targets,
                           LossKind kind, const std::string& whose) {
  return targets.empty() ? at::zeros_like(output)
                         : require_like_output(the_target(targets, kind), output, kind, whose);
}

// cross_entropy's class-index form: outputs [N, C, d1, ...] (classes in dimension 1) take integer
// targets [N, d1, ...]. Shapes and dtype only, so that it holds under vmap too.
const at::Tensor& require_class_index_target(const at::Tensor& target, const at::Tensor& output,
                                            const std::string& whose) {
  if (at::isFloatingType(target.scalar_type())) {
    bad_input("cross_entropy takes class-index targets (an integer tensor), got dtype " + dtype_of(target) +
              ": pass int64 class indices, or use the mse loss for real-valued targets");
  }
  if (!at::isIntegralType(target.scalar_type(), /*includeBool=*/false)) {
    bad_input("cross_entropy takes class-index targets (an integer tensor), got dtype " + dtype_of(target) +
              ": pass int64 class indices (y.long())");
  }
  if (output.dim() < 2) {
    bad_input("cross_entropy needs outputs [N, C] or [N, C, d1, ...] (classes in dimension 1), but the "
              "model's output has shape " + c10::str(output.sizes()) + whose + ": use another loss (mse, l1, sum)");
  }
  std::vector<int64_t> expected = output.sizes().vec();
  expected.erase(expected.begin() + 1);
  if (target.sizes().vec() != expected) {
    bad_input("the cross_entropy target has shape " + c10::str(target.sizes()) + " but the model's output of shape " +
              c10::str(output.sizes()) + whose + " takes targets of shape " + c10::str(at::IntArrayRef(expected)) +
              ": one class index per sample (and per position, for outputs [N, C, d1, ...])");
  }
  return target;
}

// Shapes in messages are a one-sample batch's where the loss is taken per sample.
std::string whose_shapes(int64_t batch_size) { return batch_size == 1 ? " (for one sample)" : ""; }

}  // namespace

void check_class_indices(const Loss& loss, const at::Tensor& output, const std::vector<at::Tensor>& targets,
                         int64_t batch_dim, int64_t first_sample) {
  if (loss.kind != LossKind::CrossEntropy || targets.size() != 1 || output.dim() < 2) return;
  const at::Tensor& target = targets[0];
  if (!at::isIntegralType(target.scalar_type(), /*includeBool=*/false) || target.dim() == 0) return;
  const int64_t classes = output.size(1);
  // Samples first, so that the first offending element belongs to the first offending sample.
  const at::Tensor by_sample = target.to(at::kLong).movedim(batch_dim < 0 ? batch_dim + target.dim() : batch_dim, 0);
  const at::Tensor bad = (by_sample.lt(0).logical_and(by_sample.ne(kIgnoreIndex))).logical_or(by_sample.ge(classes));
  const int64_t bad_count = bad.sum().item<int64_t>();
  if (bad_count == 0) return;
  const int64_t flat = bad.flatten().nonzero()[0].item<int64_t>();
  const int64_t value = by_sample.flatten()[flat].item<int64_t>();
  const int64_t sample = first_sample + flat / (by_sample.numel() / by_sample.size(0));
  std::string more = bad_count > 1 ? " (" + std::to_string(bad_count - 1) + " more out of range)" : "";
  bad_input("sample " + std::to_string(sample) + "'s cross_entropy target is " + std::to_string(value) +
            ", not a class index of the model's " + std::to_string(classes) + " classes" + more +
            ": give class indices in [0, " + std::to_string(classes) + ") (or -100 to ignore a position)");
}

namespace {

// The built-in losses l1, mse and cross_entropy with ATen's reduction `aten` (sum, mean or none).
at::Tensor builtin_loss(LossKind kind, const at::Tensor& output, const std::vector<at::Tensor>& targets, int64_t aten,
                        const std::string& whose) {
  switch (kind) {
    case LossKind::L1:
      return at::l1_loss(output, target_or_zeros(output, targets, kind, whose), aten);
    case LossKind::MSE:
      return at::mse_loss(output, target_or_zeros(output, targets, kind, whose), aten);
    case LossKind::CrossEntropy: {
      const at::Tensor& target = require_class_index_target(the_target(targets, kind), output, whose);
      return at::cross_entropy_loss(output, target.to(at::kLong), std::nullopt, aten);
    }
    default:
      bad_input("not a built-in loss with an ATen form: " + to_string(kind));
  }
}

}  // namespace

at::Tensor Loss::operator()(const at::Tensor& output, const std::vector<at::Tensor>& targets,
                            Reduction reduction, int64_t batch_size) const {
  switch (kind) {
    case LossKind::L1:
    case LossKind::MSE:
    case LossKind::CrossEntropy:
      return builtin_loss(kind, output, targets, aten_reduction(reduction), whose_shapes(batch_size));
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

std::optional<at::Tensor> per_sample_sum_losses(const Loss& loss, const at::Tensor& output,
                                                const std::vector<at::Tensor>& targets) {
  const int64_t batch_size = output.size(0);
  at::Tensor elements;
  switch (loss.kind) {
    case LossKind::L1:
    case LossKind::MSE:
    case LossKind::CrossEntropy:
      elements = builtin_loss(loss.kind, output, targets, at::Reduction::None, "");
      break;
    case LossKind::Sum:
      elements = output;
      break;
    case LossKind::Custom:
      return std::nullopt;
  }
  return elements.reshape({batch_size, -1}).sum(1);
}

double mean_per_sum(const Loss& loss, const at::Tensor& output, const std::vector<at::Tensor>& targets) {
  const double none = std::numeric_limits<double>::quiet_NaN();
  switch (loss.kind) {
    case LossKind::L1:
    case LossKind::MSE:
      return output.numel() > 0 ? 1.0 / static_cast<double>(output.numel()) : none;
    case LossKind::Sum:
      return 1.0;
    case LossKind::CrossEntropy: {
      if (targets.size() != 1) return none;
      const int64_t counted = targets[0].ne(kIgnoreIndex).sum().item<int64_t>();
      return counted > 0 ? 1.0 / static_cast<double>(counted) : none;
    }
    case LossKind::Custom:
      return none;
  }
  return none;
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

#include "psg4j/reference.h"

#include "psg4j/error.h"
#include "psg4j/sample_workers.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>

namespace psg4j {
namespace {

std::vector<at::Tensor> tensors_of(const NamedTensors& named) {
  std::vector<at::Tensor> out;
  out.reserve(named.size());
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}

// Copies `from` into `buffers`, made on first use: a forward gets copies, not views (a model that
// writes into its input must not change the caller's batch), and one set serves every sample.
void copy_into(std::vector<at::Tensor>& buffers, const std::vector<at::Tensor>& from) {
  if (buffers.size() != from.size()) {
    buffers = copies_of(from);
    return;
  }
  c10::NoGradGuard no_grad;
  for (size_t k = 0; k < from.size(); ++k) {
    if (buffers[k].sizes() == from[k].sizes() && buffers[k].dtype() == from[k].dtype()) {
      buffers[k].copy_(from[k]);
    } else {
      buffers[k] = from[k].clone();  // the model resized its input in place
    }
  }
}

// One worker's reference: the model's forward bound to one replica, the leaves, and the
// one-sample input and target copies, set up once and reused for every sample it takes.
class SampleRunner {
 public:
  SampleRunner(const Model& model, const Batch& batch, const Loss& loss, const std::vector<at::Tensor>& leaves)
      : model_(model), batch_(batch), loss_(loss), leaves_(leaves), forward_(model.bind_forward()) {}

  // Sample i's gradient under `reduction`; *mean_per_sum, when asked, gets what the sample's mean
  // gradient is of this (sum) one.
  std::vector<at::Tensor> gradient(int64_t i, Reduction reduction, double* mean_per_sum) {
    c10::AutoGradMode grad_mode(true);
    try {
      copy_into(inputs_, batch_.sample_inputs(i));
      copy_into(targets_, batch_.sample_targets(i));
      const at::Tensor output = (*forward_)(inputs_);
      const at::Tensor loss = loss_(output, targets_, reduction, /*batch_size=*/1);
      if (!loss.requires_grad()) {
        throw Error(ErrorKind::ModelFailure,
                    "the loss of sample " + std::to_string(i) +
                        " does not depend on any trainable parameter: check that the model's "
                        "parameters require grad and that the forward uses them");
      }
      if (mean_per_sum != nullptr) {
        c10::NoGradGuard no_grad;
        *mean_per_sum = psg4j::mean_per_sum(loss_, output, targets_);
      }
      std::vector<at::Tensor> grads = torch::autograd::grad({loss}, leaves_, {}, /*retain_graph=*/false,
                                                            /*create_graph=*/false, /*allow_unused=*/true);
      for (size_t k = 0; k < grads.size(); ++k) {
        if (!grads[k].defined()) grads[k] = zeros(k);
      }
      return grads;
    } catch (const c10::Error& e) {
      throw Error(ErrorKind::ModelFailure, "running " + model_.describe() + " on sample " + std::to_string(i) +
                                               " failed: " + cause_first(e.what_without_backtrace()));
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {  // the TorchScript interpreter rethrows op errors as these
      throw Error(ErrorKind::ModelFailure, "running " + model_.describe() + " on sample " + std::to_string(i) +
                                               " failed: " + cause_first(e.what()));
    }
  }

 private:
  // The gradient of a parameter the loss does not reach: one zeros tensor, only ever read.
  const at::Tensor& zeros(size_t k) {
    if (zeros_.size() != leaves_.size()) zeros_.resize(leaves_.size());
    if (!zeros_[k].defined()) zeros_[k] = at::zeros_like(leaves_[k]).detach();
    return zeros_[k];
  }

  const Model& model_;
  const Batch& batch_;
  const Loss& loss_;
  const std::vector<at::Tensor>& leaves_;
  std::unique_ptr<BoundForward> forward_;
  std::vector<at::Tensor> inputs_, targets_, zeros_;
};

// The lowest sample whose gradient failed, and its error: what a run on one worker would report.
class FirstFailure {
 public:
  int64_t sample() const { return sample_.load(); }
  void record(int64_t i, std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (i < sample_.load()) {
      sample_.store(i);
      error_ = std::move(error);
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<int64_t> sample_{std::numeric_limits<int64_t>::max()};
  std::mutex mutex_;
  std::exception_ptr error_;
};

// Visits sample i's gradient for each reduction asked, each backward taken at most once; the sum
// one stands in for the mean where `one_pass` and the loss gives the multiple for this sample.
void visit_sample(SampleRunner& runner, int64_t i, const std::vector<Reduction>& reductions, bool one_pass,
                  const ReductionVisitor& visit) {
  std::vector<at::Tensor> sum, mean;
  bool have_sum = false, have_mean = false;
  double mean_per_sum = std::numeric_limits<double>::quiet_NaN();
  auto sum_gradient = [&]() -> const std::vector<at::Tensor>& {
    if (!have_sum) sum = runner.gradient(i, Reduction::Sum, one_pass ? &mean_per_sum : nullptr);
    have_sum = true;
    return sum;
  };
  for (size_t k = 0; k < reductions.size(); ++k) {
    if (reductions[k] == Reduction::Sum) {
      visit(i, ReferenceGradient{k, sum_gradient(), 1.0});
      continue;
    }
    if (one_pass) {
      const std::vector<at::Tensor>& g = sum_gradient();
      if (!std::isnan(mean_per_sum)) {
        visit(i, ReferenceGradient{k, g, mean_per_sum});
        continue;
      }
    }
    if (!have_mean) mean = runner.gradient(i, Reduction::Mean, nullptr);
    have_mean = true;
    visit(i, ReferenceGradient{k, mean, 1.0});
  }
}

bool asks(const std::vector<Reduction>& reductions, Reduction r) {
  return std::find(reductions.begin(), reductions.end(), r) != reductions.end();
}

}  // namespace

std::vector<at::Tensor> sample_gradient(const Problem& problem, const NamedTensors& parameters,
                                        int64_t i) {
  const std::vector<at::Tensor> leaves = tensors_of(parameters);
  SampleRunner runner(problem.model, problem.batch, problem.loss, leaves);
  return runner.gradient(i, problem.reduction, nullptr);
}

void check_targets(const Problem& problem, int64_t begin, int64_t end) {
  // Only class indices have values to check; the other losses' targets are checked by shape.
  if (problem.loss.kind != LossKind::CrossEntropy || problem.batch.targets.empty()) return;
  at::Tensor output;
  try {
    c10::NoGradGuard no_grad;
    output = problem.model.forward(copies_of(problem.batch.sample_inputs(begin)));
  } catch (const std::exception&) {
    return;  // the model's own failure: the reference reports it, naming the sample
  }
  std::vector<at::Tensor> targets;
  for (const at::Tensor& t : problem.batch.targets) {
    const int64_t dim = problem.batch.target_batch_dim;
    targets.push_back(t.narrow(dim < 0 ? dim + t.dim() : dim, begin, end - begin));
  }
  check_class_indices(problem.loss, output, targets, problem.batch.target_batch_dim, begin);
}

void for_each_reference_gradient(const Model& model, const Batch& batch, const Loss& loss,
                                 const std::vector<Reduction>& reductions, const NamedTensors& parameters,
                                 const Spread& spread, const ReductionVisitor& visit) {
  const int64_t batch_size = batch.validate();
  check_targets(Problem{model, batch, loss, Reduction::Sum}, 0, batch_size);
  const std::vector<at::Tensor> leaves = tensors_of(parameters);
  const bool one_pass =
      loss.kind != LossKind::Custom && asks(reductions, Reduction::Sum) && asks(reductions, Reduction::Mean);
  std::atomic<int64_t> next{0};
  FirstFailure failure;
  // Samples are taken from one counter, in rising order: after a failure at sample j the workers
  // finish the samples below j only, so the error reported is the one a single worker would meet.
  run_single_threaded(sample_workers(spread.workers), [&](int) {
    SampleRunner runner(model, batch, loss, leaves);
    for (int64_t i = next++; i < batch_size && i < failure.sample(); i = next++) {
      try {
        visit_sample(runner, i, reductions, one_pass, visit);
      } catch (...) {
        failure.record(i, std::current_exception());
      }
    }
  });
  failure.rethrow();
}

void for_each_sample_gradient(const Problem& problem, const NamedTensors& parameters,
                              const SampleVisitor& visit, const Spread& spread) {
  for_each_reference_gradient(problem.model, problem.batch, problem.loss, {problem.reduction}, parameters, spread,
                              [&](int64_t i, const ReferenceGradient& g) { visit(i, g.grads); });
}

NamedTensors microbatch_gradients(const Problem& problem, const Spread& spread) {
  const NamedTensors parameters = problem.model.trainable_parameters();
  const int64_t batch_size = problem.batch.validate();
  NamedTensors out;
  out.reserve(parameters.size());
  for (const auto& [name, p] : parameters) {
    out.emplace_back(name, at::empty(batched_shape(batch_size, p.sizes()), p.options().requires_grad(false)));
  }
  for_each_sample_gradient(problem, parameters, [&](int64_t i, const std::vector<at::Tensor>& g) {
    for (size_t k = 0; k < g.size(); ++k) out[k].second.select(0, i).copy_(g[k]);
  }, spread);
  return out;
}

}  // namespace psg4j

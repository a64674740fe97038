#include "psg4j/reference.h"

#include "psg4j/error.h"
#include "psg4j/cuda_graphs.h"
#include "psg4j/cuda_reference.h"
#include "psg4j/devices.h"
#include "psg4j/sample_workers.h"

#include <c10/core/GradMode.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>

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
  // `mean_per_sum_of_samples`, when given, holds each sample's mean-per-sum multiple, read once
  // per check on CUDA where computing it per sample would read the device (cross_entropy's count).
  SampleRunner(const Model& model, const Batch& batch, const Loss& loss, const std::vector<at::Tensor>& leaves,
               const std::vector<double>* mean_per_sum_of_samples = nullptr)
      : model_(model), batch_(batch), loss_(loss), leaves_(leaves), forward_(model.bind_forward()),
        mean_per_sum_of_samples_(mean_per_sum_of_samples) {}

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
        *mean_per_sum = mean_per_sum_of_samples_ != nullptr ? (*mean_per_sum_of_samples_)[i]
                                                            : psg4j::mean_per_sum(loss_, output, targets_);
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
  const std::vector<double>* mean_per_sum_of_samples_;
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

// Whether one backward of the sum serves the mean too (a built-in loss, both asked): see
// for_each_reference_gradient.
bool one_backward_for_both(const Loss& loss, const std::vector<Reduction>& reductions) {
  return loss.kind != LossKind::Custom && asks(reductions, Reduction::Sum) && asks(reductions, Reduction::Mean);
}

// ---- The reference on CUDA: stream workers, optionally replaying CUDA graphs ----

// Where a batch's reference runs: its first input's device (a batch has one device: the
// callers check that), else its first target's.
at::Device batch_device(const Batch& batch) {
  if (!batch.inputs.empty()) return batch.inputs.front().device();
  if (!batch.targets.empty()) return batch.targets.front().device();
  return at::Device(at::kCPU);
}

// Each sample's mean-per-sum multiple with one host read for the whole batch (cross_entropy: 1 /
// its targets not ignored, NaN where all are), or empty where the per-sample computation reads
// nothing from the device (l1, mse, sum: shapes only) or there is none (custom losses).
std::vector<double> mean_per_sum_of_samples(const Loss& loss, const Batch& batch, int64_t batch_size) {
  if (loss.kind != LossKind::CrossEntropy || batch.targets.size() != 1) return {};
  c10::NoGradGuard no_grad;
  const at::Tensor& target = batch.targets.front();
  const int64_t dim = normalized_dim(target, batch.target_batch_dim, "the cross_entropy target");
  const at::Tensor counted =
      target.ne(kIgnoreIndex).movedim(dim, 0).reshape({batch_size, -1}).sum(1).to(at::kDouble).cpu();
  std::vector<double> out(static_cast<size_t>(batch_size));
  const double* c = counted.const_data_ptr<double>();
  for (int64_t i = 0; i < batch_size; ++i) out[i] = c[i] > 0 ? 1.0 / c[i] : std::numeric_limits<double>::quiet_NaN();
  return out;
}

// One stream worker's graphs, one per reduction asked (each captured alone, so the mean one is
// exact without a host-computed scale), or none where graphs are off or any capture failed.
using WorkerGraphs = std::vector<std::unique_ptr<SampleGraph>>;

// Captures every worker's graphs on its own stream, from the caller's thread before the workers
// start (so no two captures overlap, and no eager work of another worker runs during one). The
// first failure drops them all; *route says which route the samples take.
std::vector<WorkerGraphs> capture_worker_graphs(const Model& model, const Batch& batch, const Loss& loss,
                                                const std::vector<Reduction>& reductions,
                                                const std::vector<at::Tensor>& leaves,
                                                const std::vector<c10::Stream>& streams, std::string* route) {
  std::vector<WorkerGraphs> graphs(streams.size());
  c10::impl::VirtualGuardImpl impl(streams.front().device_type());
  const c10::Stream caller = impl.getStream(streams.front().device());
  for (size_t w = 0; w < streams.size(); ++w) {
    wait_for(caller, streams[w]);  // the batch the warm-up reads is ready
    c10::StreamGuard on_worker(streams[w]);
    for (Reduction reduction : reductions) {
      GraphCapture capture = capture_sample_graph(GraphProblem{model, batch, loss, leaves, reduction}, 0);
      if (!capture.graph) {
        *route = cuda_compiled() ? "cuda streams (graph capture failed: " + capture.failure + ")"
                                 : "cuda streams (" + capture.failure + ")";
        return {};
      }
      graphs[w].push_back(std::move(capture.graph));
    }
  }
  *route = "cuda graphs";
  return graphs;
}

// Visits sample i from `graphs` (one replay per reduction asked).
void visit_replayed(WorkerGraphs& graphs, int64_t i, const ReductionVisitor& visit) {
  for (size_t k = 0; k < graphs.size(); ++k) visit(i, ReferenceGradient{k, graphs[k]->run(i), 1.0});
}

std::string reference_on_streams(const Model& model, const Batch& batch, const Loss& loss,
                                 const std::vector<Reduction>& reductions, const std::vector<at::Tensor>& leaves,
                                 const Spread& spread, const ReductionVisitor& visit, int64_t batch_size,
                                 bool one_pass) {
  const at::Device device = batch_device(batch);
  const int workers = stream_workers(spread.workers, batch_size);
  // Declared before the graphs, so destroyed after them.
  std::optional<PrivateStreams> private_streams;
  if (spread.cuda_graphs) private_streams.emplace(device, workers);
  const std::vector<c10::Stream> streams = private_streams ? private_streams->streams() : worker_streams(device, workers);
  std::string route = "cuda streams";
  std::vector<WorkerGraphs> graphs;
  if (spread.cuda_graphs) graphs = capture_worker_graphs(model, batch, loss, reductions, leaves, streams, &route);
  const std::vector<double> scales = one_pass ? mean_per_sum_of_samples(loss, batch, batch_size) : std::vector<double>{};
  std::atomic<int64_t> next{0};
  FirstFailure failure;
  run_on_streams(device, streams, [&](int w) {
    SampleRunner runner(model, batch, loss, leaves, scales.empty() ? nullptr : &scales);
    for (int64_t i = next++; i < batch_size && i < failure.sample(); i = next++) {
      try {
        if (graphs.empty()) {
          visit_sample(runner, i, reductions, one_pass, visit);
        } else {
          visit_replayed(graphs[w], i, visit);
        }
      } catch (...) {
        failure.record(i, std::current_exception());
      }
    }
  });
  // The graphs are destroyed on return; their last replays must have ended first (their
  // executable graphs and private memory pools go with them). One host wait per check.
  if (!graphs.empty()) {
    for (const c10::Stream& stream : streams) stream.synchronize();
  }
  failure.rethrow();
  return route;
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

std::string for_each_reference_gradient(const Model& model, const Batch& batch, const Loss& loss,
                                        const std::vector<Reduction>& reductions, const NamedTensors& parameters,
                                        const Spread& spread, const ReductionVisitor& visit) {
  const int64_t batch_size = batch.validate();
  check_targets(Problem{model, batch, loss, Reduction::Sum}, 0, batch_size);
  const std::vector<at::Tensor> leaves = tensors_of(parameters);
  const bool one_pass = one_backward_for_both(loss, reductions);
  if (batch_size > 0 && batch_device(batch).is_cuda()) {
    return reference_on_streams(model, batch, loss, reductions, leaves, spread, visit, batch_size, one_pass);
  }
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
  return "cpu workers";
}

void for_each_reference_pair(const ReferenceSetup& first, const ReferenceSetup& second, const Loss& loss,
                             const std::vector<Reduction>& reductions, const std::vector<int64_t>& samples,
                             const Spread& spread, const PairVisitor& visit) {
  const int64_t batch_size = first.batch.validate();
  for (int64_t i : samples) {
    if (i < 0 || i >= batch_size) bad_input("sample " + std::to_string(i) + " is outside the batch of " + std::to_string(batch_size));
  }
  if (samples.empty()) return;
  check_targets(Problem{first.model, first.batch, loss, Reduction::Sum}, 0, batch_size);
  const std::vector<at::Tensor> first_leaves = tensors_of(first.leaves);
  const std::vector<at::Tensor> second_leaves = tensors_of(second.leaves);
  const bool one_pass = one_backward_for_both(loss, reductions);
  std::atomic<size_t> next{0};
  FirstFailure failure;
  run_single_threaded(std::min<int>(sample_workers(spread.workers), static_cast<int>(samples.size())), [&](int) {
    SampleRunner a(first.model, first.batch, loss, first_leaves);
    SampleRunner b(second.model, second.batch, loss, second_leaves);
    std::vector<std::vector<at::Tensor>> held(reductions.size());
    std::vector<double> held_scale(reductions.size(), 1.0);
    for (size_t k = next++; k < samples.size() && samples[k] < failure.sample(); k = next++) {
      const int64_t i = samples[k];
      try {
        visit_sample(a, i, reductions, one_pass, [&](int64_t, const ReferenceGradient& g) {
          held[g.reduction] = g.grads;
          held_scale[g.reduction] = g.scale;
        });
        visit_sample(b, i, reductions, one_pass, [&](int64_t, const ReferenceGradient& g) {
          visit(i, ReferenceGradient{g.reduction, held[g.reduction], held_scale[g.reduction]}, g);
        });
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

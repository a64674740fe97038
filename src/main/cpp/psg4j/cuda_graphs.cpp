#include "psg4j/cuda_graphs.h"

#include "psg4j/cuda_reference.h"
#include "psg4j/error.h"

#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>

#if PSG4J_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <exception>

namespace psg4j {

#if PSG4J_WITH_CUDA
namespace {

// How many eager runs precede capture: torch.cuda.graphs' make_graphed_callables takes 3.
constexpr int kWarmupRuns = 3;

// The captured computation's static buffers and the graph that reads and writes them.
class CapturedSample final : public SampleGraph {
 public:
  CapturedSample(const GraphProblem& problem) : problem_(problem), forward_(problem.model.bind_forward()) {}

  // Forward, loss and gradients of the static inputs, eagerly or under capture alike.
  void compute() {
    c10::AutoGradMode grad_mode(true);
    const at::Tensor output = (*forward_)(inputs_);
    const at::Tensor loss = problem_.loss(output, targets_, problem_.reduction, /*batch_size=*/1);
    if (!loss.requires_grad()) throw std::runtime_error("the loss does not depend on any trainable parameter");
    std::vector<at::Tensor> grads = torch::autograd::grad({loss}, problem_.leaves, {}, /*retain_graph=*/false,
                                                          /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < grads.size(); ++k) {
      if (!grads[k].defined()) grads[k] = zeros_[k];  // made before capture, never written
    }
    grads_ = std::move(grads);
  }

  void set_up(int64_t warmup_sample) {
    c10::NoGradGuard no_grad;
    inputs_ = copies_of(problem_.batch.sample_inputs(warmup_sample));
    targets_ = copies_of(problem_.batch.sample_targets(warmup_sample));
    for (const at::Tensor& leaf : problem_.leaves) zeros_.push_back(at::zeros_like(leaf).detach());
  }

  // Captures compute() into the graph; on failure ends the capture so the stream stays usable.
  void capture() {
    // Thread-local mode: other threads' allocations and event queries (the autograd engine's,
    // an eager worker's) stay legal while this thread captures.
    graph_.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
      compute();
    } catch (...) {
      end_failed_capture();
      throw;
    }
    graph_.capture_end();
  }

  const std::vector<at::Tensor>& run(int64_t i) override {
    c10::NoGradGuard no_grad;
    copy_sample(problem_.batch.sample_inputs(i), inputs_);
    copy_sample(problem_.batch.sample_targets(i), targets_);
    graph_.replay();
    return grads_;
  }

 private:
  static void copy_sample(const std::vector<at::Tensor>& from, std::vector<at::Tensor>& into) {
    for (size_t k = 0; k < from.size(); ++k) into[k].copy_(from[k]);
  }

  // capture_end ends the stream's capture (cudaStreamEndCapture) before it checks the result, so
  // the stream leaves capture mode even though the graph is invalid; its error is the expected one.
  void end_failed_capture() noexcept {
    try {
      graph_.capture_end();
    } catch (...) {
    }
    (void)cudaGetLastError();  // clears the capture error that is not sticky
  }

  GraphProblem problem_;
  std::unique_ptr<BoundForward> forward_;
  std::vector<at::Tensor> inputs_, targets_, zeros_, grads_;
  at::cuda::CUDAGraph graph_;
};

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

GraphCapture capture_sample_graph(const GraphProblem& problem, int64_t warmup_sample) {
  GraphCapture out;
  auto captured = std::make_unique<CapturedSample>(problem);
  try {
    captured->set_up(warmup_sample);
    for (int r = 0; r < kWarmupRuns; ++r) captured->compute();
    captured->capture();
    out.graph = std::move(captured);
  } catch (const c10::Error& e) {
    out.failure = first_line(e.what_without_backtrace());
  } catch (const std::exception& e) {
    out.failure = first_line(e.what());
  }
  return out;
}

PrivateStreams::PrivateStreams(const at::Device& device, int count) {
  c10::cuda::CUDAGuard on_device(device);
  for (int k = 0; k < std::max(1, count); ++k) {
    cudaStream_t stream = nullptr;
    C10_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    owned_.push_back(stream);
    streams_.push_back(c10::cuda::getStreamFromExternal(stream, device.index()).unwrap());
  }
}

PrivateStreams::~PrivateStreams() {
  for (void* stream : owned_) {
    // Its work first: cudaStreamDestroy would not wait, and the caching allocator may still
    // hold blocks it recorded for this stream (they are freed as their events complete).
    (void)cudaStreamSynchronize(static_cast<cudaStream_t>(stream));
    (void)cudaStreamDestroy(static_cast<cudaStream_t>(stream));
  }
}

#else

PrivateStreams::PrivateStreams(const at::Device& device, int count) : streams_(worker_streams(device, count)) {}
PrivateStreams::~PrivateStreams() = default;

GraphCapture capture_sample_graph(const GraphProblem&, int64_t) {
  return GraphCapture{nullptr, "this psg4j was built without CUDA headers: no graph capture"};
}

#endif

}  // namespace psg4j

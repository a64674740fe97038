// CUDA graphs of the one-sample reference (--cuda-graphs): one sample's forward, loss
// and autograd::grad captured once into static input, target and gradient buffers, then replayed
// for every sample after copying it into the static inputs, so a sample costs one graph launch
// instead of hundreds of kernel launches. Needs CUDA's own headers (PSG4J_WITH_CUDA); without
// them capture always fails, with a reason saying so.
#pragma once

#include "psg4j/batch.h"
#include "psg4j/loss.h"
#include "psg4j/model.h"

#include <c10/core/Stream.h>

#include <memory>
#include <string>
#include <vector>

namespace psg4j {

// One worker's captured sample gradient under one reduction. Used on the stream it was captured
// on (the worker's), by one thread at a time.
class SampleGraph {
 public:
  virtual ~SampleGraph() = default;
  // Sample i's gradients, one per leaf, queued on the current stream: static buffers that the
  // next run overwrites (read them on the same stream before it).
  virtual const std::vector<at::Tensor>& run(int64_t i) = 0;
};

struct GraphProblem {
  const Model& model;
  const Batch& batch;
  const Loss& loss;
  const std::vector<at::Tensor>& leaves;
  Reduction reduction;
};

// The result of a capture: the graph, or why there is none (one line).
struct GraphCapture {
  std::unique_ptr<SampleGraph> graph;
  std::string failure;
};

// Streams of this check's own for the graphed workers (with CUDA's headers): c10's pool streams
// are shared by every caller in the process, and work another thread queued on a stream while it
// captures would be captured into this graph. Destroyed, after their work, when this ends. Pool
// streams where this psg4j was built without CUDA's headers (capture never runs there).
class PrivateStreams {
 public:
  PrivateStreams(const at::Device& device, int count);
  ~PrivateStreams();
  PrivateStreams(const PrivateStreams&) = delete;
  PrivateStreams& operator=(const PrivateStreams&) = delete;
  const std::vector<c10::Stream>& streams() const { return streams_; }

 private:
  std::vector<c10::Stream> streams_;
  std::vector<void*> owned_;  // the cudaStream_t handles this created
};

// Captures `problem`'s sample gradient on the current stream (a side stream, not the default
// one: capture needs it), after eager warm-up runs of sample `warmup_sample` on the same stream
// (they initialize cuBLAS workspaces, the autograd engine's device threads and lazy kernels,
// which capture must not meet first). Any failure (an op that synchronizes, a host op, an
// unsupported op under capture) leaves the stream usable and is returned, not thrown.
GraphCapture capture_sample_graph(const GraphProblem& problem, int64_t warmup_sample);

}  // namespace psg4j

// The value route of the batch-independence probe: every sample run alone (a one-sample batch,
// as the reference runs it) must give the output it has in the batch. It sees what no gradient
// sees: a batch statistic taken through .item(), a branch on a batch statistic.
#pragma once

#include "psg4j/batch.h"
#include "psg4j/leak_detection.h"

#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace psg4j {

// How the samples were run alone.
enum class AloneRoute {
  Vmap,       // one vmapped forward over B one-sample batches
  PerSample,  // B one-sample forwards, where vmap cannot run the model
  None,       // the model cannot run one sample (BatchNorm in train mode): no evidence
};

std::string route_name(AloneRoute route);

struct AloneFindings {
  AloneRoute route = AloneRoute::None;
  std::vector<int64_t> differing;  // samples whose output alone differs from theirs in the batch
  int64_t vmapped_forwards = 0;    // the vmapped forward (1, also when it failed)
  int64_t sample_forwards = 0;     // one-sample forwards (where vmap could not run the model)
};

// Batched and one-sample kernels may round differently (GEMM blocking, vectorized reductions):
// a sample differs alone when max |alone - in batch| exceeds this factor times the larger of the
// sample's and the batch's largest |output|. 1000 ulps of the output's dtype, at least 1e-10
// (float32: 1.2e-4).
double alone_rtol(at::ScalarType dtype);

// `batch_output`: the batch's output, its samples in dimension `output_dim`.
AloneFindings compare_alone(const Forward& forward, const Batch& batch, const at::Tensor& batch_output,
                            int64_t output_dim);

}  // namespace psg4j

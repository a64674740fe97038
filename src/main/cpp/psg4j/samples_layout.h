// Where a tensor computed from a batch keeps its samples, and per-sample summaries of it: the
// vocabulary the batch-independence probes share.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

namespace psg4j {

// The dimension of `t` that holds the B samples: the inputs' batch dimension when it has size B,
// else the one dimension of size B; none when there is no such dimension or several candidates.
std::optional<int64_t> samples_dim(const at::Tensor& t, int64_t batch_dim, int64_t batch_size);

// samples_dim, or a BadInput Error naming `what`, its shape and the batch size.
int64_t require_samples_dim(const at::Tensor& t, int64_t batch_dim, int64_t batch_size, const std::string& what);

// Each sample's largest |value| of `t` (samples in dimension `dim`), as B doubles.
std::vector<double> per_sample_max_abs(const at::Tensor& t, int64_t dim, int64_t batch_size);

// The samples (in dimension `dim`) of a floating-point `t` holding NaN or Inf; none for others.
std::vector<int64_t> non_finite_samples(const at::Tensor& t, int64_t dim, int64_t batch_size);

// A boolean mask of the samples in `indices`, shaped to broadcast along dimension `dim` of a
// tensor of rank `rank`.
at::Tensor samples_mask(const std::vector<int64_t>& indices, int64_t batch_size, int64_t dim, int64_t rank,
                        const at::TensorOptions& options);

// "[1, 2, 5]"
std::string list_of(const std::vector<int64_t>& samples);

}  // namespace psg4j

#include "psg4j/batch.h"

#include "psg4j/error.h"

#include <sstream>

namespace psg4j {
namespace {

int64_t common_batch_size(const std::vector<at::Tensor>& tensors, int64_t dim,
                          const std::string& kind, int64_t expected) {
  for (size_t k = 0; k < tensors.size(); ++k) {
    const std::string what = kind + " " + std::to_string(k);
    const int64_t size = tensors[k].size(normalized_dim(tensors[k], dim, what));
    if (expected < 0) {
      expected = size;
    } else if (size != expected) {
      std::ostringstream msg;
      msg << what << " has batch size " << size << " (shape " << tensors[k].sizes()
          << ") but an earlier tensor has " << expected
          << ": every input and target must hold the same samples";
      bad_input(msg.str());
    }
  }
  return expected;
}

std::vector<at::Tensor> narrow_all(const std::vector<at::Tensor>& tensors, int64_t dim, int64_t i) {
  std::vector<at::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.narrow(normalized_dim(t, dim), i, 1));
  return out;
}

}  // namespace

int64_t normalized_dim(const at::Tensor& t, int64_t dim, const std::string& what) {
  if (!t.defined()) bad_input(what + " is an undefined tensor");
  if (t.layout() != at::kStrided) {
    bad_input(what + " is a sparse tensor (layout " + c10::str(t.layout()) + "): give dense tensors (x.to_dense())");
  }
  const int64_t rank = t.dim();
  if (rank == 0) {
    bad_input(what + " is a scalar (shape []): give a batch, a tensor whose batch dimension holds the samples");
  }
  if (dim < -rank || dim >= rank) {
    std::ostringstream msg;
    msg << "batch dimension " << dim << " is out of range for " << what << " of shape "
        << t.sizes() << " (rank " << rank << "): pass a batch dimension in [" << -rank << ", "
        << rank - 1 << "]";
    bad_input(msg.str());
  }
  return dim < 0 ? dim + rank : dim;
}

int64_t Batch::validate() const {
  if (inputs.empty()) bad_input("the batch has no input tensor: give at least one input");
  const int64_t b = common_batch_size(inputs, batch_dim, "input", -1);
  common_batch_size(targets, target_batch_dim, "target", b);
  if (b == 0) bad_input("the batch is empty (batch size 0): give at least one sample");
  return b;
}

std::vector<at::Tensor> Batch::sample_inputs(int64_t i) const {
  return narrow_all(inputs, batch_dim, i);
}

std::vector<at::Tensor> Batch::sample_targets(int64_t i) const {
  return narrow_all(targets, target_batch_dim, i);
}

std::vector<at::Tensor> copies_of(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out;
  out.reserve(tensors.size());
  for (const at::Tensor& t : tensors) out.push_back(t.clone());
  return out;
}

std::vector<int64_t> batched_shape(int64_t batch_size, at::IntArrayRef shape) {
  std::vector<int64_t> out{batch_size};
  out.insert(out.end(), shape.begin(), shape.end());
  return out;
}

}  // namespace psg4j

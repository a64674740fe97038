#include "psg4j/samples_layout.h"

#include "psg4j/error.h"

#include <c10/util/StringUtil.h>

namespace psg4j {

std::optional<int64_t> samples_dim(const at::Tensor& t, int64_t batch_dim, int64_t batch_size) {
  if (!t.defined()) return std::nullopt;
  if (batch_dim >= 0 && t.dim() > batch_dim && t.size(batch_dim) == batch_size) return batch_dim;
  std::optional<int64_t> found;
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) != batch_size) continue;
    if (found) return std::nullopt;  // ambiguous: two dimensions could hold the samples
    found = d;
  }
  return found;
}

int64_t require_samples_dim(const at::Tensor& t, int64_t batch_dim, int64_t batch_size, const std::string& what) {
  if (const std::optional<int64_t> dim = samples_dim(t, batch_dim, batch_size)) return *dim;
  int64_t candidates = 0;
  for (int64_t d = 0; d < t.dim(); ++d) candidates += t.size(d) == batch_size ? 1 : 0;
  const std::string shape = c10::str(t.sizes());
  const std::string size = std::to_string(batch_size);
  if (candidates == 0) {
    bad_input("the " + what + " has shape " + shape + ", with no dimension of the batch size " + size +
              ": the batch-independence probe needs an output that keeps one entry per sample (in the inputs' "
              "batch dimension " + std::to_string(batch_dim) + ", or in one dimension of size " + size + ")");
  }
  bad_input("the " + what + " has shape " + shape + ": its batch dimension " + std::to_string(batch_dim) +
            " does not have the batch size " + size + " and " + std::to_string(candidates) +
            " dimensions do, so the samples cannot be told apart: return the samples in the inputs' batch "
            "dimension (or use a batch size no other dimension has)");
}

std::vector<double> per_sample_max_abs(const at::Tensor& t, int64_t dim, int64_t batch_size) {
  const at::Tensor m =
      t.detach().abs().movedim(dim, 0).reshape({batch_size, -1}).amax(1).to(at::kDouble).cpu().contiguous();
  return std::vector<double>(m.data_ptr<double>(), m.data_ptr<double>() + batch_size);
}

std::vector<int64_t> non_finite_samples(const at::Tensor& t, int64_t dim, int64_t batch_size) {
  std::vector<int64_t> out;
  if (!at::isFloatingType(t.scalar_type()) && !at::isComplexType(t.scalar_type())) return out;
  if (t.numel() == 0) return out;
  const at::Tensor bad =
      (~at::isfinite(t.detach())).movedim(dim, 0).reshape({batch_size, -1}).any(1).cpu().contiguous();
  const bool* flags = bad.data_ptr<bool>();
  for (int64_t i = 0; i < batch_size; ++i) {
    if (flags[i]) out.push_back(i);
  }
  return out;
}

at::Tensor samples_mask(const std::vector<int64_t>& indices, int64_t batch_size, int64_t dim, int64_t rank,
                        const at::TensorOptions& options) {
  at::Tensor mask = at::zeros({batch_size}, at::TensorOptions().dtype(at::kBool));
  bool* flags = mask.data_ptr<bool>();
  for (int64_t i : indices) flags[i] = true;  // one write each, not one tensor op each
  std::vector<int64_t> shape(rank, 1);
  shape[dim] = batch_size;
  return mask.reshape(shape).to(options.device());
}

std::string list_of(const std::vector<int64_t>& samples) { return c10::str(c10::IntArrayRef(samples)); }

}  // namespace psg4j

// Where per-sample gradients are written: buffers [B, *shape], one per trainable parameter, either
// made by psg4j for one call (the caller then owns them) or the caller's own, reused across calls.
#pragma once

#include "psg4j/model.h"

#include <vector>

namespace psg4j {

// Uninitialized buffers [batch_size, *p.shape] like each of `parameters`. Large CPU ones are
// advised as transparent huge pages: their first write then faults once per 2 MiB instead of once
// per 4 KiB page, which at B = 256 costs more than computing the gradients.
std::vector<at::Tensor> new_per_sample_buffers(int64_t batch_size, const std::vector<at::Tensor>& parameters);

// The caller's buffers in `out` in the order of `parameters` (the trainable ones), each checked to
// be [batch_size, *shape], of the parameter's dtype and device, contiguous, not requiring grad and
// overlapping no other. Throws a BadInput Error naming the parameter otherwise, or naming an entry
// of `out` that is no trainable parameter.
std::vector<at::Tensor> caller_per_sample_buffers(const NamedTensors& out, const NamedTensors& parameters,
                                                  int64_t batch_size);

}  // namespace psg4j

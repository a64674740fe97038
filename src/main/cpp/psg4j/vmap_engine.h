// The vmap engine: per-sample gradients as torch.func's vmap(grad(loss ∘ functional_call)) with
// in_dims (None, batch_dim, target_batch_dim), built from ATen's functorch primitives (DESIGN §6).
#pragma once

#include "psg4j/reference.h"
#include "psg4j/transforms.h"

namespace psg4j {

struct VmapOptions {
  int64_t chunk_size = 0;  // samples per vectorized pass (bounds memory); 0: the whole batch
  Randomness randomness = Randomness::Error;
};

// Same semantics and layout as microbatch_gradients: [B, *shape] per trainable parameter.
// Where vmap cannot run the model but the model runs one sample at a time, throws an Unsupported
// Error naming the op that failed.
NamedTensors vmap_gradients(const Problem& problem, const VmapOptions& options);

}  // namespace psg4j

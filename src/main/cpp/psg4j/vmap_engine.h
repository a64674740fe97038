// The vmap engine: per-sample gradients as torch.func's vmap(grad(loss ∘ functional_call)) with
// in_dims (None, batch_dim, target_batch_dim), built from ATen's functorch primitives (DESIGN §6).
#pragma once

#include "psg4j/reference.h"
#include "psg4j/transforms.h"

namespace psg4j {

struct VmapOptions {
  int64_t chunk_size = 0;  // samples per vectorized pass (bounds memory); 0: the whole batch
  Randomness randomness = Randomness::Error;
  // Take the per-layer rules' route where it applies (rule_engine.h); false: functorch's always.
  bool layer_rules = true;
};

// Same semantics and layout as microbatch_gradients: [B, *shape] per trainable parameter.
// Where vmap cannot run the model but the model runs one sample at a time, throws an Unsupported
// Error naming the op that failed.
// Models that are a chain of layers with per-layer rules (per_sample_rules.h) take the rules' route:
// one batched forward and backward, each layer's gradients written once into their buffers.
NamedTensors vmap_gradients(const Problem& problem, const VmapOptions& options);

// vmap_gradients written into the caller's buffers `out` (name -> [B, *shape], one per trainable
// parameter, contiguous, of its dtype and device), which a caller reuses across calls so that
// no call allocates or faults in pages for its results. psg4j writes them and keeps no reference;
// a wrong buffer is a BadInput Error naming its parameter, raised before anything is written.
void vmap_gradients_into(const Problem& problem, const VmapOptions& options, const NamedTensors& out);

}  // namespace psg4j

// The vmap engine's fast route: per-sample gradients from per-layer rules (per_sample_rules.h),
// Opacus's idea made exact for psg4j's semantics. One batched forward through the model's layer
// chain, the per-sample loss gradients by vmap(grad(loss)) over the loss alone (the reference's
// loss of each one-sample batch, whatever the loss and reduction), one batched backward to the
// layers' outputs, and each layer's rule writing its parameters' gradients where they belong.
#pragma once

#include "psg4j/reference.h"

#include <functional>
#include <vector>

namespace psg4j {

// Writes every trainable parameter's per-sample gradients into the buffers `make_buffers` returns
// (trainable order, [B, *shape] each), called once the route is known to apply, and returns them.
// Returns nullopt, having called nothing, where the rules do not cover the problem exactly: a
// model that is no chain of layers with rules or per-sample passthroughs, several inputs, a batch
// dimension other than 0, tied parameters. chunk_size as VmapOptions': samples per batched pass.
std::optional<std::vector<at::Tensor>> rule_gradients(
    const Problem& problem, int64_t chunk_size, const std::function<std::vector<at::Tensor>()>& make_buffers);

}  // namespace psg4j

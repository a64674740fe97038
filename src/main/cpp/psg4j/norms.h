// Per-sample gradient norms of the microbatch reference: what ghost / fast gradient
// clipping computes without materializing per-sample gradients, and what a norms-only candidate
// is checked against (DESIGN §1: the L2 norm of sample i's whole gradient, or per parameter).
#pragma once

#include "psg4j/reference.h"

namespace psg4j {

// The norms of every sample's reference gradient under one reduction.
struct SampleNorms {
  TrainableParameters parameters;  // model order; a tied parameter once, with its aliases
  at::Tensor per_parameter;        // [P, B] double: ‖g_{i,p}‖₂
  at::Tensor whole;                // [B] double: sqrt(Σ_p ‖g_{i,p}‖₂²), each tied parameter once
};

// ‖g‖₂ accumulated in double, whatever g's dtype and device.
double l2_norm(const at::Tensor& g);

// Streams the reference sample by sample (O(|θ|) per worker, never B×|θ|). Each sample's norms are
// computed by the one worker that took it, from its own gradient, so the numbers are the same at
// any worker count.
SampleNorms reference_norms(const Problem& problem, const Spread& spread = {});

}  // namespace psg4j

// Variants of a model that compute the same function with other values of its tensors: cast to
// another floating-point precision (the sketch's projections and the rounding yardstick run in
// double), or with its parameters moved by one ulp (the yardstick of a model that cannot).
#pragma once

#include "psg4j/batch.h"
#include "psg4j/model.h"

#include <memory>

namespace psg4j {

// `model` with every floating-point tensor of its state() — parameters, trainable or frozen, and
// buffers — as a `dtype` copy taken now (later in-place updates of the model's tensors are not
// seen). Its parameters() are the trainable copies, new leaves that require grad, under the
// model's names and aliases; its forward runs the model's structure on the copies (nothing the
// caller can reach changes). Throws a BadInput Error where the model's tensors cannot be replaced.
// `model` must outlive the result.
std::shared_ptr<Model> cast_model(const Model& model, at::ScalarType dtype);

// `batch` with its floating-point inputs and targets as `dtype` copies (the others shared).
Batch cast_batch(const Batch& batch, at::ScalarType dtype);

// Whether `model` runs sample `sample` of `batch` and gives a `dtype` output: a model that makes
// floating-point tensors of its own (a constant, a tensor kept in its closure) cannot run in
// double — its matmuls refuse mixed precisions, or its output stays float.
bool runs_in(const Model& model, const Batch& batch, int64_t sample, at::ScalarType dtype);

// `model` with every trainable parameter element moved by one ulp of its dtype, up or down by a
// fair coin drawn from `seed` (the same for a seed): its forward is the model's functional call
// with those values, and its parameters() are they, as leaves that require grad. `model` must
// outlive the result.
std::shared_ptr<Model> perturbed_model(const Model& model, uint64_t seed);

// The name reports give a floating-point dtype: "float", "double", "half", "bfloat16".
std::string precision_name(at::ScalarType dtype);

// The unit roundoff of a floating-point dtype: 2^-24 for float, 2^-53 for double, 2^-11 for half,
// 2^-8 for bfloat16.
double unit_roundoff(at::ScalarType dtype);

}  // namespace psg4j

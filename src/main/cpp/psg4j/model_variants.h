// Variants of a model that compute the same function with other values of its tensors: cast to
// another floating-point precision (the sketch's projections run in double).
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

// The name reports give a floating-point dtype: "float", "double", "half", "bfloat16".
std::string precision_name(at::ScalarType dtype);

}  // namespace psg4j

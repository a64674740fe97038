// The outputs of the ops a forward runs, recorded through an OpObserverScope: the probes'
// view inside a model (which op's output first mixes samples; which tensor first depends on
// integer inputs through something differentiable, such as an embedding's output).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

namespace psg4j {

// An op's output seen during a forward, in the order the ops finished.
struct OpOutput {
  // The TorchScript submodule that ran the op: its dotted instance path below the top module
  // ("" for the top module itself, or for models that are not TorchScript).
  std::string module;
  at::Tensor value;
  // Whether the op read a non-floating tensor that has a dimension of the batch size (token ids).
  bool reads_integer_samples = false;
};

// Runs `forward` recording the outputs of its ops that autograd tracks (they require grad).
// `batch_size` is what reads_integer_samples looks for.
std::vector<OpOutput> record_op_outputs(const std::function<void()>& forward, int64_t batch_size);

}  // namespace psg4j

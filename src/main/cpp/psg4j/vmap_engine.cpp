#include "psg4j/vmap_engine.h"

#include "psg4j/error.h"
#include "psg4j/gradient_buffers.h"
#include "psg4j/rule_engine.h"
#include "psg4j/op_trace.h"

#include <ATen/functorch/BatchedFallback.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>

#include <functional>
#include <mutex>
#include <optional>

namespace psg4j {
namespace {

struct Chunk {
  int64_t start;
  int64_t size;
};

// How the parameters enter the vmap level. Shared is torch.func's in_dims None: one copy, the
// fast path. PerSample gives every sample its own (expanded, not copied) copy, in_dims 0: slower,
// but every intermediate is then batched, so ops that write a batched value into a tensor made
// from the parameters alone (GRU's first hidden state, for one) work too.
enum class ParameterMode { Shared, PerSample };

// Plain tensors holding the chunk's samples, made before any level is pushed.
std::vector<at::Tensor> chunk_of(const std::vector<at::Tensor>& tensors, int64_t dim, Chunk chunk) {
  std::vector<at::Tensor> out;
  for (const at::Tensor& t : tensors) out.push_back(t.narrow(dim, chunk.start, chunk.size));
  return out;
}

void require_differentiable(const at::Tensor& loss, const Problem& problem) {
  if (!loss.requires_grad()) {
    throw Error(ErrorKind::ModelFailure,
                "the loss of " + problem.model.describe() +
                    " does not depend on any trainable parameter: check that the model's "
                    "parameters require grad and that the forward uses them");
  }
}

// vmap(grad(loss ∘ functional_call)) over the chunk: gradients [chunk.size, *shape].
std::vector<at::Tensor> chunk_gradients(const Problem& problem, const std::vector<at::Tensor>& params,
                                        Chunk chunk, Randomness randomness, ParameterMode mode) {
  const Batch& batch = problem.batch;
  const std::vector<at::Tensor> inputs = chunk_of(batch.inputs, batch.batch_dim, chunk);
  const std::vector<at::Tensor> targets = chunk_of(batch.targets, batch.target_batch_dim, chunk);
  std::vector<Unbatched> unbatched(params.size());
  std::vector<bool> reached(params.size(), false);
  {
    VmapLevel vmap(chunk.size, randomness);
    const std::vector<at::Tensor> sample_inputs = one_sample_batches(vmap, inputs, batch.batch_dim);
    const std::vector<at::Tensor> sample_targets =
        one_sample_batches(vmap, targets, batch.target_batch_dim);
    // Made before the grad level is pushed, so that they are batched, then wrapped for grad.
    std::vector<at::Tensor> level_params = params;
    if (mode == ParameterMode::PerSample) {
      for (at::Tensor& p : level_params) {
        p = vmap.add_batch_dim(p.unsqueeze(0).expand(batched_shape(chunk.size, p.sizes())), 0);
      }
    }
    std::vector<at::Tensor> grads;
    {
      GradLevel grad;
      // Only the parameters are wrapped: the inputs stay captured, so functorch refuses an
      // in-place write into them instead of letting it change the caller's batch.
      std::vector<at::Tensor> wrapped;
      for (const at::Tensor& p : level_params) wrapped.push_back(grad.differentiable(p));
      const at::Tensor output = problem.model.functional_forward(sample_inputs, wrapped);
      const at::Tensor loss = problem.loss(output, sample_targets, problem.reduction, /*batch_size=*/1);
      require_differentiable(loss, problem);
      grads = torch::autograd::grad({loss}, wrapped, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
      for (auto& g : grads) {
        if (g.defined()) g = grad.unwrap(g);
      }
    }
    for (size_t k = 0; k < grads.size(); ++k) {
      reached[k] = grads[k].defined();
      if (reached[k]) unbatched[k] = unbatch(grads[k], vmap.id());
    }
  }
  std::vector<at::Tensor> out;
  for (size_t k = 0; k < params.size(); ++k) {
    if (reached[k]) {
      out.push_back(batch_first(unbatched[k], chunk.size));
    } else {
      out.push_back(at::zeros(batched_shape(chunk.size, params[k].sizes()), params[k].options()));
    }
  }
  return out;
}

// What the user can do about a known kind of vmap failure, beyond the microbatch engine.
std::string remedy(const std::string& message, const std::string& ops) {
  if (message.find("randomness") != std::string::npos) {
    return ". For random ops choose randomness 'different' or 'same' (--randomness), or put the "
           "model in eval mode";
  }
  if (ops.find("aten::gru") != std::string::npos || ops.find("aten::rnn_") != std::string::npos) {
    return ". ATen's GRU and RNN kernels cannot be vectorized from their default (None) initial "
           "hidden state, in torch.func too; pass an initial state made from the input, e.g. "
           "h0 = torch.zeros(layers, n, hidden) + torch.zeros_like(x).sum()";
  }
  return "";
}

// vmap failed on `chunk`. A target out of range in any of its samples, or a failure of the model
// one sample at a time too, is the input's or the model's and is thrown as the reference reports
// it; otherwise vmap is the problem, and a rerun under an OpTrace names the op it could not batch.
[[noreturn]] void explain_failure(const Problem& problem, const NamedTensors& named_params,
                                  const std::vector<at::Tensor>& params, Chunk chunk,
                                  Randomness randomness, const std::string& message) {
  check_targets(problem, chunk.start, chunk.start + chunk.size);
  sample_gradient(problem, named_params, chunk.start);
  std::string ops;
  {
    OpTrace trace;
    try {
      chunk_gradients(problem, params, chunk, randomness, ParameterMode::Shared);
    } catch (...) {
    }
    ops = trace.describe();
  }
  std::string text = "the vmap engine cannot run " + problem.model.describe() + ": " + essential_line(message);
  if (!ops.empty()) text += " [failing op: " + ops + "]";
  text += remedy(message, ops);
  text += ". The model runs one sample at a time, so use the microbatch engine "
          "(Engines.microbatch(), --engine microbatch)";
  throw Error(ErrorKind::Unsupported, text);
}

// The chunk's gradients, shared parameters first, per-sample ones where that fails; the mode
// that worked is kept for the following chunks.
std::vector<at::Tensor> gradients_either_way(const Problem& problem, const NamedTensors& named_params,
                                             const std::vector<at::Tensor>& params, Chunk chunk,
                                             Randomness randomness, ParameterMode* mode) {
  std::string first_failure;
  for (;;) {
    try {
      return chunk_gradients(problem, params, chunk, randomness, *mode);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::BadInput) throw;
      if (first_failure.empty()) first_failure = e.what();
    } catch (const c10::Error& e) {
      if (first_failure.empty()) first_failure = e.what_without_backtrace();
    } catch (const std::exception& e) {  // the TorchScript interpreter rethrows op errors as these
      if (first_failure.empty()) first_failure = e.what();
    }
    if (*mode == ParameterMode::PerSample) break;
    *mode = ParameterMode::PerSample;
  }
  explain_failure(problem, named_params, params, chunk, randomness, first_failure);
}

// Fallback kernels are correct, only slower; their warnings would flood a user's log. The switch
// is process-wide: the first engine call to start turns it off and the last to end restores what
// it was, so overlapping calls from several threads leave it as they found it.
class QuietFallbackWarnings {
 public:
  QuietFallbackWarnings() {
    std::lock_guard<std::mutex> lock(state().mutex);
    if (state().active++ == 0) {
      state().saved = at::functorch::isVmapFallbackWarningEnabled();
      at::functorch::setVmapFallbackWarningEnabled(false);
    }
  }
  ~QuietFallbackWarnings() {
    std::lock_guard<std::mutex> lock(state().mutex);
    if (--state().active == 0) at::functorch::setVmapFallbackWarningEnabled(state().saved);
  }
  QuietFallbackWarnings(const QuietFallbackWarnings&) = delete;
  QuietFallbackWarnings& operator=(const QuietFallbackWarnings&) = delete;

 private:
  struct State {
    std::mutex mutex;
    int active = 0;      // engine calls running
    bool saved = true;   // the switch as the first of them found it
  };
  static State& state() {
    static State shared;
    return shared;
  }
};

// The rules' route where it applies (nullopt otherwise). Its failures are not reported from
// there: the functorch route runs the problem again and explains what failed, in its own terms.
// A wrong input is the caller's, whichever route meets it; a Java callback's exception goes
// through the functorch route's retry, as before.
std::optional<std::vector<at::Tensor>> try_rules(const Problem& problem, const VmapOptions& options,
                                                 const std::function<std::vector<at::Tensor>()>& buffers) {
  if (!options.layer_rules) return std::nullopt;
  try {
    return rule_gradients(problem, options.chunk_size, buffers);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::BadInput) throw;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// vmap(grad) over the whole model, chunk by chunk. Into `into` when given (the caller's buffers),
// else into tensors of its own; returns the gradients in trainable order.
std::vector<at::Tensor> functorch_gradients(const Problem& problem, const NamedTensors& named_params,
                                            int64_t batch_size, const VmapOptions& options,
                                            std::vector<at::Tensor> into) {
  std::vector<at::Tensor> params;
  for (const auto& entry : named_params) params.push_back(entry.second.detach());
  const int64_t chunk_size = options.chunk_size == 0 ? batch_size : std::min(options.chunk_size, batch_size);
  ParameterMode mode = ParameterMode::Shared;
  for (int64_t start = 0; start < batch_size; start += chunk_size) {
    const Chunk chunk{start, std::min(chunk_size, batch_size - start)};
    std::vector<at::Tensor> part =
        gradients_either_way(problem, named_params, params, chunk, options.randomness, &mode);
    if (chunk.size == batch_size && into.empty()) return part;  // already the whole result
    if (into.empty()) into = new_per_sample_buffers(batch_size, params);
    for (size_t k = 0; k < part.size(); ++k) into[k].narrow(0, chunk.start, chunk.size).copy_(part[k]);
  }
  return into;
}

int64_t validated_batch_size(const Problem& problem, const VmapOptions& options) {
  const int64_t batch_size = problem.batch.validate();
  if (options.chunk_size < 0) {
    bad_input("chunk size must be positive (or 0 for the whole batch), got " +
              std::to_string(options.chunk_size));
  }
  return batch_size;
}

}  // namespace

NamedTensors vmap_gradients(const Problem& problem, const VmapOptions& options) {
  QuietFallbackWarnings quiet;
  const int64_t batch_size = validated_batch_size(problem, options);
  const NamedTensors named_params = problem.model.trainable_parameters();
  std::optional<std::vector<at::Tensor>> grads = try_rules(problem, options, [&] {
    std::vector<at::Tensor> params;
    for (const auto& entry : named_params) params.push_back(entry.second);
    return new_per_sample_buffers(batch_size, params);
  });
  if (!grads) grads = functorch_gradients(problem, named_params, batch_size, options, {});
  NamedTensors out;
  for (size_t k = 0; k < named_params.size(); ++k) out.emplace_back(named_params[k].first, (*grads)[k]);
  return out;
}

void vmap_gradients_into(const Problem& problem, const VmapOptions& options, const NamedTensors& out) {
  QuietFallbackWarnings quiet;
  const int64_t batch_size = validated_batch_size(problem, options);
  const NamedTensors named_params = problem.model.trainable_parameters();
  const std::vector<at::Tensor> buffers = caller_per_sample_buffers(out, named_params, batch_size);
  if (try_rules(problem, options, [&] { return buffers; })) return;
  functorch_gradients(problem, named_params, batch_size, options, buffers);
}

}  // namespace psg4j

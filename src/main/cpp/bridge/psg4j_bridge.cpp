#include "bridge/psg4j_bridge.h"

#include "psg4j/blas_threads.h"
#include "psg4j/call_scope.h"
#include "psg4j/custom_layers.h"
#include "psg4j/error.h"
#include "psg4j/sample_workers.h"
#include "psg4j/tensor_io.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <torch/nn.h>
#include <torch/script.h>

#include <algorithm>
#include <stdexcept>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace psg4j {
namespace bridge {
namespace {

const char* kind_tag(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::BadInput: return "bad_input";
    case ErrorKind::ModelFailure: return "model_failure";
    case ErrorKind::CallbackFailed: return "callback_failed";
    case ErrorKind::Unsupported: return "unsupported";
  }
  return "error";
}

// Runs `body`, turning every native error into std::runtime_error("psg4j:<kind>:<message>"),
// which JavaCPP rethrows as a java.lang.RuntimeException that dev.psg4j.bridge.Natives types.
// The message's first line names the real cause, also for a TorchScript traceback (cause_first).
template <typename Body>
auto translated(Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error& e) {
    throw std::runtime_error(std::string("psg4j:") + kind_tag(e.kind()) + ":" + cause_first(e.what()));
  } catch (const c10::Error& e) {
    throw std::runtime_error(std::string("psg4j:model_failure:") + cause_first(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("psg4j:model_failure:") + cause_first(e.what()));
  }
}

// A computation's body: translated, with OpenBLAS held at one thread for its whole length (see
// Note [One BLAS thread for every psg4j computation] in psg4j/blas_threads.h).
template <typename Body>
auto computed(Body&& body) -> decltype(body()) {
  return translated([&] {
    OneBlasThread blas;
    return body();
  });
}

Reduction reduction_of(int code) {
  if (code != 0 && code != 1) bad_input("reduction must be 0 (sum) or 1 (mean), got " + std::to_string(code));
  return static_cast<Reduction>(code);
}

NamedTensors zip(const std::vector<std::string>* names, const std::vector<at::Tensor>* tensors) {
  if (names == nullptr || tensors == nullptr || names->size() != tensors->size()) {
    bad_input("names and tensors must be two lists of the same length");
  }
  NamedTensors out;
  for (size_t k = 0; k < names->size(); ++k) out.emplace_back((*names)[k], (*tensors)[k]);
  return out;
}

void require_callback_success(int status, const char* what) {
  if (status != 0) throw Error(ErrorKind::CallbackFailed, std::string("the Java ") + what + " threw");
}

// A tensor the bridge hands Java to read as host memory: itself on the CPU, a copy from a device.
at::Tensor on_host(const at::Tensor& t) { return t.defined() ? t.to(at::kCPU) : t; }

}  // namespace

int64_t swap_call_scope(int64_t scope) { return set_call_scope(scope); }

const Model& NativeModel::get() const {
  if (!model_) bad_input("the model handle is empty (closed?)");
  return *model_;
}

NativeModel torchscript_model(torch::jit::Module* module) {
  return translated([&] {
    if (module == nullptr) bad_input("the TorchScript module is null");
    return NativeModel(psg4j::torchscript_model(*module));
  });
}

NativeModel frontend_model(torch::nn::Module* module) {
  return translated([&] { return NativeModel(psg4j::frontend_model(module)); });
}

NativeModel function_model(const std::vector<std::string>* names,
                           const std::vector<at::Tensor>* parameters, ForwardFn forward,
                           const std::string& description) {
  return translated([&] {
    if (forward == nullptr) bad_input("the forward callback is null");
    ForwardFunction call = [forward](const std::vector<at::Tensor>& inputs,
                                     const std::vector<at::Tensor>& parameters) {
      at::Tensor output;
      require_callback_success(forward(current_call_scope(), &inputs, &parameters, &output), "forward");
      return output;
    };
    return NativeModel(psg4j::function_model(zip(names, parameters), call, description));
  });
}

NativeLoss builtin_loss(int kind) {
  return translated([&] {
    if (kind < 0 || kind >= static_cast<int>(LossKind::Custom)) {
      bad_input("unknown built-in loss code " + std::to_string(kind));
    }
    Loss loss;
    loss.kind = static_cast<LossKind>(kind);
    return NativeLoss(loss);
  });
}

NativeLoss custom_loss(LossFn fn) {
  return translated([&] {
    if (fn == nullptr) bad_input("the custom loss callback is null");
    Loss loss;
    loss.kind = LossKind::Custom;
    loss.custom = [fn](const at::Tensor& output, const std::vector<at::Tensor>& targets,
                       Reduction reduction) {
      at::Tensor value;
      require_callback_success(fn(current_call_scope(), &output, &targets, static_cast<int>(reduction), &value),
                               "loss");
      return value;
    };
    return NativeLoss(loss);
  });
}

void loss_value(const NativeLoss& loss, const at::Tensor* output, const std::vector<at::Tensor>* targets,
                int reduction, int64_t batch_size, at::Tensor* out) {
  computed([&] {
    if (output == nullptr || out == nullptr) bad_input("loss_value needs an output tensor");
    const std::vector<at::Tensor> given = targets == nullptr ? std::vector<at::Tensor>{} : *targets;
    // A Java engine's batch loss: samples along dimension 0, as cross_entropy takes them.
    check_class_indices(loss.get(), *output, given, /*batch_dim=*/0, /*first_sample=*/0);
    *out = loss.get()(*output, given, reduction_of(reduction), batch_size);
  });
}


// ---- Devices ----
Spread ReferenceSpread::get() const {
  if (workers_ < 0) bad_input("workers must be 0 (the intra-op thread count) or positive, got " + std::to_string(workers_));
  Spread spread;
  spread.workers = workers_;
  spread.cuda_graphs = cuda_graphs_;
  return spread;
}

std::string canonical_device(const std::string& spec) {
  return translated([&] { return parse_device(spec).str(); });
}

bool cuda_runtime_loaded() {
  return translated([&] { return psg4j::cuda_runtime_loaded(); });
}

int cuda_device_count() {
  return translated([&] { return psg4j::cuda_device_count(); });
}

bool cuda_compiled() { return psg4j::cuda_compiled(); }

void synchronize_device(const std::string& device) {
  translated([&] { psg4j::synchronize(parse_device(device)); });
}

DeviceMemoryView device_memory(const std::string& device) {
  return translated([&] { return DeviceMemoryView(psg4j::device_memory(parse_device(device))); });
}

void reset_peak_device_memory(const std::string& device) {
  translated([&] { psg4j::reset_peak_memory(parse_device(device)); });
}

void require_on_device(const at::Tensor* tensor, const std::string& device, const std::string& what) {
  translated([&] {
    if (tensor == nullptr) bad_input(what + " is null");
    psg4j::require_on_device(*tensor, parse_device(device), what);
  });
}

bool tf32_allowed() {
  return translated([&] { return psg4j::tf32_allowed(); });
}

void set_tf32_allowed_for_tests(bool allowed) {
  translated([&] {
    const at::Float32Precision precision = allowed ? at::Float32Precision::TF32 : at::Float32Precision::IEEE;
    for (const at::Float32Op op : {at::Float32Op::MATMUL, at::Float32Op::CONV, at::Float32Op::RNN}) {
      at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, op, precision);
    }
  });
}
// ---- end of the devices block ----

int64_t NativeBatch::size() const {
  return translated([&] { return batch_.validate(); });
}

void NativeBatch::input(int64_t k, at::Tensor* out) const {
  translated([&] {
    if (k < 0 || k >= input_count() || out == nullptr) bad_input("input index " + std::to_string(k) + " out of range");
    *out = batch_.inputs[k];
  });
}

void NativeBatch::target(int64_t k, at::Tensor* out) const {
  translated([&] {
    if (k < 0 || k >= target_count() || out == nullptr) bad_input("target index " + std::to_string(k) + " out of range");
    *out = batch_.targets[k];
  });
}

NativeBatch make_batch(const std::vector<at::Tensor>* inputs, const std::vector<at::Tensor>* targets,
                       int64_t batch_dim, int64_t target_batch_dim, const std::string& device) {
  return translated([&] {
    Batch batch;
    if (inputs != nullptr) batch.inputs = *inputs;
    if (targets != nullptr) batch.targets = *targets;
    batch.batch_dim = batch_dim;
    batch.target_batch_dim = target_batch_dim;
    batch.validate();  // first: an undefined or misshapen tensor is named as such, not as a failed copy
    if (!device.empty()) {
      const at::Device on = parse_device(device);
      for (at::Tensor& t : batch.inputs) t = t.to(on);
      for (at::Tensor& t : batch.targets) t = t.to(on);
    }
    return NativeBatch(std::move(batch));
  });
}

std::string NamedTensorList::name(int64_t k) const {
  return translated([&] {
    if (k < 0 || k >= size()) bad_input("index " + std::to_string(k) + " out of range");
    return items_[k].first;
  });
}

void NamedTensorList::tensor(int64_t k, at::Tensor* out) const {
  translated([&] {
    if (k < 0 || k >= size() || out == nullptr) bad_input("index " + std::to_string(k) + " out of range");
    *out = items_[k].second;
  });
}

NamedTensorList named_tensor_list(const std::vector<std::string>* names,
                                  const std::vector<at::Tensor>* tensors) {
  return translated([&] { return NamedTensorList(zip(names, tensors)); });
}

NamedTensorList trainable_parameters(const NativeModel& model) {
  return translated([&] { return NamedTensorList(model.get().trainable_parameters()); });
}

ParameterAliases::ParameterAliases(TrainableParameters parameters) {
  for (TrainableParameter& p : parameters) {
    if (!p.aliases.empty()) tied_.push_back(std::move(p));
  }
}

const TrainableParameter& ParameterAliases::at(int64_t k) const {
  if (k < 0 || k >= size()) bad_input("tied parameter index " + std::to_string(k) + " out of range");
  return tied_[k];
}

std::string ParameterAliases::name(int64_t k) const {
  return translated([&] { return at(k).name; });
}

int64_t ParameterAliases::alias_count(int64_t k) const {
  return translated([&] { return static_cast<int64_t>(at(k).aliases.size()); });
}

std::string ParameterAliases::alias(int64_t k, int64_t m) const {
  return translated([&] { return at(k).aliases.at(m); });
}

ParameterAliases parameter_aliases(const NativeModel& model) {
  return translated([&] { return ParameterAliases(model.get().parameters()); });
}

NamedTensorList microbatch_gradients(const NativeModel& model, const NativeBatch& batch,
                                     const NativeLoss& loss, int reduction, const ReferenceSpread& spread) {
  return computed([&] {
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    return NamedTensorList(psg4j::microbatch_gradients(problem, spread.get()));
  });
}

NamedTensorList vmap_gradients(const NativeModel& model, const NativeBatch& batch,
                               const NativeLoss& loss, int reduction, int64_t chunk_size,
                               int randomness) {
  return computed([&] {
    if (randomness < 0 || randomness > 2) {
      bad_input("randomness must be 0 (error), 1 (different) or 2 (same), got " + std::to_string(randomness));
    }
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    return NamedTensorList(
        psg4j::vmap_gradients(problem, VmapOptions{chunk_size, static_cast<Randomness>(randomness)}));
  });
}

// ---- The vmap engine into caller-owned buffers.
void vmap_gradients_into(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                         int reduction, int64_t chunk_size, int randomness, const NamedTensorList& out) {
  computed([&] {
    if (randomness < 0 || randomness > 2) {
      bad_input("randomness must be 0 (error), 1 (different) or 2 (same), got " + std::to_string(randomness));
    }
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    psg4j::vmap_gradients_into(problem, VmapOptions{chunk_size, static_cast<Randomness>(randomness)}, out.get());
  });
}
// ---- end of the vmap-into block.

void release_free_native_memory() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

// ---- bench memory measurement
void set_malloc_mmap_threshold(int64_t bytes) {
#if defined(__GLIBC__)
  // glibc caps the threshold at 32 MiB (HEAP_MAX on 64-bit) and refuses larger values
  const int64_t clamped = std::max<int64_t>(0, std::min<int64_t>(bytes, int64_t{32} << 20));
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(clamped));
#else
  (void)bytes;
#endif
}
// ---- end of the bench memory block.

TensorContainer load_tensor_file(const std::string& path, NamedTensorList* entries) {
  return translated([&] {
    if (entries == nullptr) bad_input("load_tensor_file needs a list to fill");
    TensorFile file = psg4j::load_tensor_file(path);
    *entries = NamedTensorList(std::move(file.entries));
    return file.container;
  });
}

const ParamComparison& ComparisonView::param(int64_t p) const {
  if (p < 0 || p >= param_count()) bad_input("parameter index " + std::to_string(p) + " out of range");
  return comparison_.params[p];
}

std::string ComparisonView::name(int64_t p) const {
  return translated([&] { return param(p).name; });
}

int64_t ComparisonView::alias_count(int64_t p) const {
  return translated([&] { return static_cast<int64_t>(param(p).aliases.size()); });
}

std::string ComparisonView::alias(int64_t p, int64_t k) const {
  return translated([&] { return param(p).aliases.at(k); });
}

ParamStatus ComparisonView::status(int64_t p) const {
  return translated([&] { return param(p).status; });
}

int64_t ComparisonView::expected_rank(int64_t p) const {
  return translated([&] { return static_cast<int64_t>(param(p).expected_shape.size()); });
}

int64_t ComparisonView::expected_dim(int64_t p, int64_t d) const {
  return translated([&] { return param(p).expected_shape.at(d); });
}

int64_t ComparisonView::candidate_rank(int64_t p) const {
  return translated([&] { return static_cast<int64_t>(param(p).candidate_shape.size()); });
}

int64_t ComparisonView::candidate_dim(int64_t p, int64_t d) const {
  return translated([&] { return param(p).candidate_shape.at(d); });
}

double ComparisonView::stat(int64_t p, int64_t i, int f) const {
  return translated([&] {
    const SampleStats& s = param(p).samples.at(i);
    switch (f) {
      case 0: return s.max_abs_err;
      case 1: return s.max_rel_err;
      case 2: return s.max_tol_ratio;
      case 3: return static_cast<double>(s.bad);
      case 4: return static_cast<double>(s.candidate_non_finite);
      case 5: return static_cast<double>(s.reference_non_finite);
      case 6: return s.rounding_level;
      case 7: return s.excess;
      case 8: return s.reference_rms;
      case 9: return s.reference_max;
    }
    bad_input("stat field " + std::to_string(f) + " out of range");
  });
}

void ComparisonView::stats(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("stats needs a tensor to fill");
    *out = on_host(psg4j::stats_tensor(comparison_));
  });
}

bool ComparisonView::rounding_measured(int64_t p) const {
  return translated([&] { return param(p).rounding_measured; });
}

int64_t ComparisonView::rounding_sample(int64_t k) const {
  return translated([&] {
    if (k < 0 || k >= rounding_sample_count()) bad_input("rounding sample index " + std::to_string(k) + " out of range");
    return comparison_.rounding_samples[k];
  });
}

// ---- Exact checks of several reductions at once ----
void ReductionCandidates::add(int reduction, const NamedTensorList& candidate) {
  translated([&] { items_.push_back(ReductionCandidate{reduction_of(reduction), candidate.get()}); });
}

ComparisonView ComparisonList::get(int64_t k) const {
  return translated([&] {
    if (k < 0 || k >= size()) bad_input("comparison index " + std::to_string(k) + " out of range");
    return ComparisonView(comparisons_[k]);
  });
}

ComparisonList compare_reductions(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                  const ReductionCandidates& candidates, double atol, double rtol,
                                  ToleranceRule rule, const ReferenceSpread& spread) {
  return computed([&] {
    return ComparisonList(psg4j::compare_with_reference(model.get(), batch.get(), loss.get(), candidates.get(),
                                                        Tolerance{atol, rtol, rule}, spread.get()));
  });
}
int set_intra_op_threads_of_this_thread(int threads) {
  return translated([&] {
    if (threads < 0) bad_input("threads must be 0 (leave the count) or positive, got " + std::to_string(threads));
    return psg4j::set_intra_op_threads_of_this_thread(threads);
  });
}

int openblas_thread_count() {
  return translated([&] { return psg4j::openblas_threads(); });
}

void set_openblas_threads_for_tests(int threads) {
  translated([&] {
    if (threads < 1) bad_input("threads must be positive, got " + std::to_string(threads));
    psg4j::set_openblas_threads(threads);
  });
}
// ---- end of the block ----

ComparisonView compare_with_reference(const NativeModel& model, const NativeBatch& batch,
                                      const NativeLoss& loss, int reduction,
                                      const NamedTensorList& candidate, double atol, double rtol,
                                      ToleranceRule rule) {
  return computed([&] {
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    return ComparisonView(psg4j::compare_with_reference(problem, candidate.get(), Tolerance{atol, rtol, rule}));
  });
}

bool ComparisonView::sketched(int64_t p) const {
  return translated([&] { return param(p).sketch.has_value(); });
}

const SketchVerdict& ComparisonView::sketch(int64_t p) const {
  if (!param(p).sketch) bad_input("parameter " + std::to_string(p) + " was not sketched");
  return *param(p).sketch;
}

SketchZone ComparisonView::sketch_zone(int64_t p) const {
  return translated([&] { return sketch(p).zone; });
}

double ComparisonView::sketch_residual_ratio(int64_t p) const {
  return translated([&] { return sketch(p).residual_ratio; });
}

// ---- Value diagnoses ----
namespace {

void copy_out(const at::Tensor& t, at::Tensor* out, const char* what) {
  if (out == nullptr) bad_input(std::string(what) + " needs a tensor to fill");
  if (!t.defined()) bad_input(std::string("this parameter has no ") + what + " fingerprints (not a 2-D parameter)");
  *out = t.to(t.options().device(at::kCPU), /*non_blocking=*/false, /*copy=*/true);
}

}  // namespace

const FingerprintPlan& FingerprintView::plan() const {
  if (!fingerprints_.plan) bad_input("an empty fingerprint view");
  return *fingerprints_.plan;
}

int64_t FingerprintView::elements() const {
  return translated([&] { return plan().elements; });
}

int64_t FingerprintView::projected() const {
  return translated([&] { return plan().projected(); });
}

bool FingerprintView::has_transposed() const {
  return translated([&] { return plan().has_transposed(); });
}

void FingerprintView::candidate(at::Tensor* out) const {
  translated([&] { copy_out(fingerprints_.candidate, out, "candidate"); });
}

void FingerprintView::reference(at::Tensor* out) const {
  translated([&] { copy_out(fingerprints_.reference, out, "reference"); });
}

void FingerprintView::reference_transposed(at::Tensor* out) const {
  translated([&] { copy_out(fingerprints_.reference_transposed, out, "transposed reference"); });
}

void FingerprintView::candidate_norms(at::Tensor* out) const {
  translated([&] { copy_out(fingerprints_.candidate_norm, out, "candidate norm"); });
}

void FingerprintView::reference_norms(at::Tensor* out) const {
  translated([&] { copy_out(fingerprints_.reference_norm, out, "reference norm"); });
}

void FingerprintView::candidate_projected_norms(at::Tensor* out) const {
  translated([&] { copy_out(fingerprints_.candidate_projected_norm, out, "candidate projected norm"); });
}

bool ComparisonView::has_fingerprints(int64_t p) const {
  return translated([&] { return param(p).fingerprints.has_value(); });
}

FingerprintView ComparisonView::fingerprints(int64_t p) const {
  return translated([&] {
    if (!param(p).fingerprints) bad_input("parameter " + std::to_string(p) + " has no fingerprints");
    return FingerprintView(*param(p).fingerprints);
  });
}
// ---- end of the value-diagnoses block ----

ComparisonView SketchView::comparison(int64_t k) const {
  return translated([&] {
    if (k < 0 || k >= comparison_count()) bad_input("comparison index " + std::to_string(k) + " out of range");
    return ComparisonView(result_.comparisons[k]);
  });
}

SketchView sketch_compare(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                          const NamedTensorList* sum_candidate, const NamedTensorList* mean_candidate,
                          double atol, double rtol, ToleranceRule rule, int64_t projections,
                          SketchPrecision precision, uint64_t seed) {
  return computed([&] {
    std::vector<std::pair<Reduction, NamedTensors>> candidates;
    if (sum_candidate != nullptr) candidates.emplace_back(Reduction::Sum, sum_candidate->get());
    if (mean_candidate != nullptr) candidates.emplace_back(Reduction::Mean, mean_candidate->get());
    if (candidates.empty()) bad_input("give the candidate of at least one reduction");
    return SketchView(psg4j::sketch_compare(model.get(), batch.get(), loss.get(), candidates,
                                            Tolerance{atol, rtol, rule}, SketchOptions{projections, seed, precision}));
  });
}

// ---- Norms-only and clipped-sum candidates ----
namespace {

template <typename Items>
void require_index(const Items& items, int64_t k, const char* what) {
  if (k < 0 || k >= static_cast<int64_t>(items.size())) {
    bad_input(std::string(what) + " index " + std::to_string(k) + " out of range [0, " + std::to_string(items.size()) +
              ")");
  }
}

}  // namespace

const TrainableParameter& SampleNormsView::param(int64_t p) const {
  require_index(norms_.parameters, p, "parameter");
  return norms_.parameters[p];
}

std::string SampleNormsView::name(int64_t p) const {
  return translated([&] { return param(p).name; });
}

int64_t SampleNormsView::alias_count(int64_t p) const {
  return translated([&] { return static_cast<int64_t>(param(p).aliases.size()); });
}

std::string SampleNormsView::alias(int64_t p, int64_t k) const {
  return translated([&] {
    require_index(param(p).aliases, k, "alias");
    return param(p).aliases[k];
  });
}

void SampleNormsView::per_parameter(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("per_parameter needs a tensor to fill");
    *out = on_host(norms_.per_parameter);
  });
}

void SampleNormsView::whole(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("whole needs a tensor to fill");
    *out = on_host(norms_.whole);
  });
}

SampleNormsView reference_norms(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                int reduction, const ReferenceSpread& spread) {
  return computed([&] {
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    return SampleNormsView(psg4j::reference_norms(problem, spread.get()));
  });
}

const TrainableParameter& ClippedSumView::param(int64_t p) const {
  require_index(comparison_.parameters, p, "parameter");
  return comparison_.parameters[p];
}

const ClippingMatch& ClippedSumView::match(int64_t k) const {
  require_index(comparison_.matches, k, "match");
  return comparison_.matches[k];
}

std::string ClippedSumView::name(int64_t p) const {
  return translated([&] {
    param(p);
    return comparison_.names[p];
  });
}

// The parameter's names other than the one the candidate used.
int64_t ClippedSumView::alias_count(int64_t p) const {
  return translated([&] { return static_cast<int64_t>(param(p).aliases.size()); });
}

std::string ClippedSumView::alias(int64_t p, int64_t k) const {
  return translated([&] {
    const TrainableParameter& t = param(p);
    std::vector<std::string> others;
    if (t.name != comparison_.names[p]) others.push_back(t.name);
    for (const std::string& a : t.aliases) {
      if (a != comparison_.names[p]) others.push_back(a);
    }
    require_index(others, k, "alias");
    return others[k];
  });
}

int64_t ClippedSumView::rank(int64_t p) const {
  return translated([&] { return static_cast<int64_t>(param(p).tensor.dim()); });
}

int64_t ClippedSumView::dim(int64_t p, int64_t d) const {
  return translated([&] {
    const at::Tensor& t = param(p).tensor;
    if (d < 0 || d >= t.dim()) bad_input("dimension " + std::to_string(d) + " out of range");
    return t.size(d);
  });
}

double ClippedSumView::threshold(int64_t p) const {
  return translated([&] {
    param(p);
    return comparison_.thresholds[p];
  });
}

void ClippedSumView::stats(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("stats needs a tensor to fill");
    *out = on_host(clipped_sum_stats_tensor(comparison_));
  });
}

void ClippedSumView::norms(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("norms needs a tensor to fill");
    *out = on_host(comparison_.norms);
  });
}

void ClippedSumView::whole(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("whole needs a tensor to fill");
    *out = on_host(comparison_.whole);
  });
}

void ClippedSumView::factors(at::Tensor* out) const {
  translated([&] {
    if (out == nullptr) bad_input("factors needs a tensor to fill");
    *out = on_host(comparison_.factors);
  });
}

std::string ClippedSumView::match_kind(int64_t k) const {
  return translated([&] { return match(k).kind; });
}

std::string ClippedSumView::match_explanation(int64_t k) const {
  return translated([&] { return match(k).explanation; });
}

int64_t ClippedSumView::match_param_count(int64_t k) const {
  return translated([&] { return static_cast<int64_t>(match(k).params.size()); });
}

int64_t ClippedSumView::match_param(int64_t k, int64_t m) const {
  return translated([&] {
    require_index(match(k).params, m, "matched parameter");
    return static_cast<int64_t>(match(k).params[m]);
  });
}

int64_t ClippedSumView::match_sample_count(int64_t k) const {
  return translated([&] { return static_cast<int64_t>(match(k).samples.size()); });
}

int64_t ClippedSumView::match_sample(int64_t k, int64_t m) const {
  return translated([&] {
    require_index(match(k).samples, m, "matched sample");
    return match(k).samples[m];
  });
}

ClippedSumView compare_clipped_sum(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                   int reduction, const NamedTensorList& candidate, const ClippingSpec& clipping,
                                   double atol, double rtol, const ReferenceSpread& spread) {
  return computed([&] {
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    return ClippedSumView(psg4j::compare_clipped_sum(problem, candidate.get(), clipping.get(), Tolerance{atol, rtol},
                                                     spread.get()));
  });
}
// ---- end of the norms block ----

namespace {

int64_t element(const std::vector<int64_t>& items, int64_t k, const char* what) {
  if (k < 0 || k >= static_cast<int64_t>(items.size())) {
    bad_input(std::string(what) + " index " + std::to_string(k) + " out of range [0, " +
              std::to_string(items.size()) + ")");
  }
  return items[k];
}

}  // namespace

ProbeView::ProbeView(ProbeResult result) : result_(std::move(result)) {
  for (const auto& entry : independence().leaks) targets_.push_back(entry.first);
}

const BatchIndependence& ProbeView::independence() const {
  static const BatchIndependence none;
  return result_.independence ? *result_.independence : none;
}

int64_t ProbeView::non_finite_sample(int64_t k) const {
  return translated([&] { return element(result_.non_finite.samples, k, "non-finite sample"); });
}

int64_t ProbeView::leak_target(int64_t k) const {
  return translated([&] { return element(targets_, k, "reported sample"); });
}

int64_t ProbeView::leak_source_count(int64_t k) const {
  return translated([&] { return static_cast<int64_t>(independence().leaks.at(leak_target(k)).size()); });
}

int64_t ProbeView::leak_source(int64_t k, int64_t m) const {
  return translated([&] { return element(independence().leaks.at(leak_target(k)), m, "leak source"); });
}

int64_t ProbeView::affected(int64_t k) const {
  return translated([&] { return element(independence().affected, k, "affected sample"); });
}

int64_t ProbeView::source(int64_t k) const {
  return translated([&] { return element(independence().sources, k, "source sample"); });
}

int64_t ProbeView::differs_alone(int64_t k) const {
  return translated([&] { return element(independence().differs_alone, k, "differs-alone sample"); });
}

ProbeView probe(const NativeModel& model, const NativeBatch& batch, int64_t probe_samples, double tolerance) {
  return computed([&] {
    ProbeOptions options;
    options.probe_samples = probe_samples;
    options.tolerance = tolerance;
    return ProbeView(psg4j::probe(model.get(), batch.get(), options));
  });
}

double probe_determinism(const NativeModel& model, const NativeBatch& batch) {
  return computed([&] {
    const Determinism result = psg4j::probe_determinism(model.get(), batch.get());
    return result.deterministic ? 0.0 : std::max(result.max_abs_diff, std::numeric_limits<double>::min());
  });
}

// ---- Layer capture for hooks-style samplers ----
namespace {

template <typename T>
const T& checked_item(const std::vector<T>& items, int64_t k, const char* what) {
  if (k < 0 || k >= static_cast<int64_t>(items.size())) {
    bad_input(std::string(what) + " index " + std::to_string(k) + " out of range [0, " +
              std::to_string(items.size()) + ")");
  }
  return items[static_cast<size_t>(k)];
}

}  // namespace

const CapturedLayer& LayerCaptureView::at(int64_t k) const { return checked_item(layers_, k, "captured layer"); }

std::string LayerCaptureView::parameter_local_name(int64_t k, int64_t m) const {
  return checked_item(at(k).spec.parameters, m, "layer parameter").first;
}

std::string LayerCaptureView::parameter_trainable_name(int64_t k, int64_t m) const {
  return checked_item(at(k).trainable_names, m, "layer parameter");
}

int64_t LayerCaptureView::stride(int64_t k, int64_t d) const { return checked_item(at(k).spec.stride, d, "stride"); }
int64_t LayerCaptureView::padding(int64_t k, int64_t d) const { return checked_item(at(k).spec.padding, d, "padding"); }
int64_t LayerCaptureView::dilation(int64_t k, int64_t d) const {
  return checked_item(at(k).spec.dilation, d, "dilation");
}
int64_t LayerCaptureView::normalized_dim(int64_t k, int64_t d) const {
  return checked_item(at(k).spec.normalized_shape, d, "normalized shape");
}

LayerCaptureView capture_layers(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                int reduction) {
  return computed([&] {
    const Problem problem{model.get(), batch.get(), loss.get(), reduction_of(reduction)};
    return LayerCaptureView(psg4j::capture_layers(problem));
  });
}
// ---- end of the layer capture block.

// ---- C++-frontend layer registry ----

void register_frontend_layer(const std::string& name, const std::vector<std::string>* slots, int64_t type_id,
                             LayerForwardFn forward) {
  translated([&] {
    if (slots == nullptr) bad_input("the parameter slots of layer type " + name + " are null");
    if (forward == nullptr) bad_input("the forward callback of layer type " + name + " is null");
    const std::string what = "forward of layer type " + name;
    register_custom_layer(name, *slots, [forward, type_id, what](const at::Tensor& input,
                                                                 const std::vector<at::Tensor>& parameters) {
      at::Tensor output;
      require_callback_success(forward(current_call_scope(), type_id, &input, &parameters, &output), what.c_str());
      if (!output.defined()) throw Error(ErrorKind::ModelFailure, "the Java " + what + " returned no tensor");
      return output;
    });
  });
}

void frontend_layer_type_names(std::vector<std::string>* out) {
  translated([&] {
    if (out == nullptr) bad_input("the output list is null");
    *out = swappable_layer_type_names();
  });
}

void make_frontend_layer(const std::string& type, const std::vector<std::string>* names,
                         const std::vector<at::Tensor>* tensors, torch::nn::AnyModule* out) {
  translated([&] {
    if (out == nullptr) bad_input("the output layer is null");
    *out = make_custom_layer(type, zip(names, tensors));
  });
}

void frontend_layer_of(torch::nn::Module* module, torch::nn::AnyModule* out) {
  translated([&] {
    if (module == nullptr || out == nullptr) bad_input("the module is null");
    *out = custom_layer_of(*module);
  });
}

// ---- end of the layer registry block ----

}  // namespace bridge
}  // namespace psg4j

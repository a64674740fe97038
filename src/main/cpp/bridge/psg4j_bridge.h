// The facade that JavaCPP binds (see dev.psg4j.bridge.NativeCore): value types with plain
// accessors, callbacks as C function pointers, errors as std::runtime_error whose message starts
// with "psg4j:<kind>:" so Java can rethrow them typed. No JNI here: JavaCPP generates that.
#pragma once

#include "psg4j/blas_threads.h"
#include "psg4j/capture.h"
#include "psg4j/clipped_sum.h"
#include "psg4j/compare.h"
#include "psg4j/custom_layers.h"
#include "psg4j/devices.h"
#include "psg4j/loss.h"
#include "psg4j/model.h"
#include "psg4j/norms.h"
#include "psg4j/probes.h"
#include "psg4j/reference.h"
#include "psg4j/sketch.h"
#include "psg4j/tensor_io.h"
#include "psg4j/vmap_engine.h"

#include <memory>
#include <string>
#include <vector>

namespace psg4j {
namespace bridge {

// Java callbacks return 0 on success; non-zero means the Java code threw: Java keeps the exception
// under the call scope each callback is given (the scope of the Java call whose work runs it, see
// Note [Call scopes] in psg4j/call_scope.h). The forward receives every parameter of the function
// model, in registration order: its own, or the ones an engine substitutes (e.g. the vmap engine's).
typedef int (*ForwardFn)(int64_t call_scope, const std::vector<at::Tensor>* inputs,
                         const std::vector<at::Tensor>* parameters, at::Tensor* output);
typedef int (*LossFn)(int64_t call_scope, const at::Tensor* output, const std::vector<at::Tensor>* targets,
                      int reduction, at::Tensor* loss);

// Sets the calling thread's call scope (Java sets its own around each call into the core, and
// puts back the one it replaced) and returns the one it replaces.
int64_t swap_call_scope(int64_t scope);

class NativeModel {
 public:
  NativeModel() = default;
  explicit NativeModel(std::shared_ptr<Model> model) : model_(std::move(model)) {}
  const Model& get() const;
  std::string describe() const { return get().describe(); }

 private:
  std::shared_ptr<Model> model_;
};

NativeModel torchscript_model(torch::jit::Module* module);
NativeModel frontend_model(torch::nn::Module* module);
NativeModel function_model(const std::vector<std::string>* names,
                           const std::vector<at::Tensor>* parameters, ForwardFn forward,
                           const std::string& description);

class NativeLoss {
 public:
  NativeLoss() = default;
  explicit NativeLoss(Loss loss) : loss_(std::move(loss)) {}
  const Loss& get() const { return loss_; }

 private:
  Loss loss_;
};

NativeLoss builtin_loss(int kind);
NativeLoss custom_loss(LossFn loss);
// The loss of a batch of `batch_size` samples, as the reference computes it (for Java engines).
void loss_value(const NativeLoss& loss, const at::Tensor* output, const std::vector<at::Tensor>* targets,
                int reduction, int64_t batch_size, at::Tensor* out);

// ---- Devices ----
// How the reference spreads its samples (psg4j::Spread), moved in one call: `workers` sample
// workers on the CPU, each on one intra-op thread (0: the calling thread's intra-op thread count;
// on CUDA the reference runs on streams instead), and whether a CUDA reference captures the
// one-sample forward + backward once as a CUDA graph and replays it per sample.
class ReferenceSpread {
 public:
  ReferenceSpread() = default;
  ReferenceSpread(int workers, bool cuda_graphs) : workers_(workers), cuda_graphs_(cuda_graphs) {}
  int workers() const { return workers_; }
  bool cuda_graphs() const { return cuda_graphs_; }
  // The core's Spread; a negative worker count is bad input.
  Spread get() const;

 private:
  int workers_ = 0;
  bool cuda_graphs_ = false;
};

// The canonical name ("cpu", "cuda:0") of a device spec ("cpu", "cuda", "cuda:N", any case); bad
// input (psg4j::parse_device's one line) for an unknown name, a CPU-only LibTorch, no visible
// device or an index out of range.
std::string canonical_device(const std::string& spec);
bool cuda_runtime_loaded();
int cuda_device_count();
bool cuda_compiled();
// Waits until the work queued on `device` (a spec as canonical_device takes) has finished.
void synchronize_device(const std::string& device);

// The caching allocator's bytes on a CUDA device, now and at the peak since the last reset
// (zeros on the CPU).
class DeviceMemoryView {
 public:
  DeviceMemoryView() = default;
  explicit DeviceMemoryView(DeviceMemory memory) : memory_(memory) {}
  int64_t allocated_bytes() const { return memory_.allocated_bytes; }
  int64_t peak_allocated_bytes() const { return memory_.peak_allocated_bytes; }

 private:
  DeviceMemory memory_;
};

DeviceMemoryView device_memory(const std::string& device);
void reset_peak_device_memory(const std::string& device);

// Refuses (bad input) a tensor that is not on `device`: "<what> is on X but the check runs on Y: ...".
void require_on_device(const at::Tensor* tensor, const std::string& device, const std::string& what);

// psg4j::ExactFloat32Scope for Java: CUDA float32 matmuls and convolutions run in IEEE float32
// (not TF32) from construction until deletion (Java's close()); scopes nest and overlap across
// threads, and the last one to end restores the process's settings.
class ExactFloat32 {
 public:
  ExactFloat32() = default;
  ExactFloat32(const ExactFloat32&) = delete;
  ExactFloat32& operator=(const ExactFloat32&) = delete;

 private:
  ExactFloat32Scope scope_;
};

bool tf32_allowed();
// Test hook: lets (or stops) CUDA float32 matmuls and convolutions use TF32, process-wide, as
// torch.backends.cuda.matmul.allow_tf32 would; only tests call it (to see a scope restore it).
void set_tf32_allowed_for_tests(bool allowed);
// ---- end of the devices block ----

class NativeBatch {
 public:
  NativeBatch() = default;
  explicit NativeBatch(Batch batch) : batch_(std::move(batch)) {}
  const Batch& get() const { return batch_; }
  int64_t size() const;
  // The batch's own references to its tensors, so that Java needs not keep the caller's open.
  int64_t input_count() const { return static_cast<int64_t>(batch_.inputs.size()); }
  void input(int64_t k, at::Tensor* out) const;
  int64_t target_count() const { return static_cast<int64_t>(batch_.targets.size()); }
  void target(int64_t k, at::Tensor* out) const;

 private:
  Batch batch_;
};

// `device`: "" keeps the tensors where they are; a device spec moves (copies) each one not there
// onto it, so the batch holds its own tensors on the check's device.
NativeBatch make_batch(const std::vector<at::Tensor>* inputs, const std::vector<at::Tensor>* targets,
                       int64_t batch_dim, int64_t target_batch_dim, const std::string& device);

class NamedTensorList {
 public:
  NamedTensorList() = default;
  explicit NamedTensorList(NamedTensors items) : items_(std::move(items)) {}
  int64_t size() const { return static_cast<int64_t>(items_.size()); }
  std::string name(int64_t k) const;
  void tensor(int64_t k, at::Tensor* out) const;
  const NamedTensors& get() const { return items_; }

 private:
  NamedTensors items_;
};

NamedTensorList named_tensor_list(const std::vector<std::string>* names,
                                  const std::vector<at::Tensor>* tensors);
NamedTensorList trainable_parameters(const NativeModel& model);

// The tied parameters of a model: each one's first name and its other names.
class ParameterAliases {
 public:
  ParameterAliases() = default;
  explicit ParameterAliases(TrainableParameters parameters);
  int64_t size() const { return static_cast<int64_t>(tied_.size()); }
  std::string name(int64_t k) const;
  int64_t alias_count(int64_t k) const;
  std::string alias(int64_t k, int64_t m) const;

 private:
  const TrainableParameter& at(int64_t k) const;
  TrainableParameters tied_;  // only the parameters that have aliases
};

ParameterAliases parameter_aliases(const NativeModel& model);
NamedTensorList microbatch_gradients(const NativeModel& model, const NativeBatch& batch,
                                     const NativeLoss& loss, int reduction, const ReferenceSpread& spread);
// randomness: 0 error, 1 different, 2 same (torch.func's meanings); chunk_size 0: whole batch.
NamedTensorList vmap_gradients(const NativeModel& model, const NativeBatch& batch,
                               const NativeLoss& loss, int reduction, int64_t chunk_size,
                               int randomness);
// ---- The vmap engine into caller-owned buffers.
// Writes the vmap engine's per-sample gradients into the tensors of `out` (name -> [B, *shape],
// one per trainable parameter: the caller's buffers, sharing storage with its Java tensors). The
// caller keeps owning them; psg4j keeps no reference once it returns. Same codes as vmap_gradients.
void vmap_gradients_into(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                         int reduction, int64_t chunk_size, int randomness, const NamedTensorList& out);
// ---- end of the vmap-into block.

// Returns the allocator's free pages to the system (glibc's malloc_trim; a no-op elsewhere), so
// that a memory measurement sees what the process holds rather than what malloc keeps cached.
void release_free_native_memory();

// ---- bench memory measurement
// Serves every allocation of at least `bytes` from a mapping of its own (glibc's M_MMAP_THRESHOLD;
// a no-op elsewhere), so a freed buffer leaves the resident set at once and the next call's buffers
// show up in it: bench's peak extra memory then counts what a call allocates, not the part of it
// malloc hands back from free memory it still holds (in thread arenas malloc_trim cannot empty).
// Fixes the threshold: glibc stops adapting it.
void set_malloc_mmap_threshold(int64_t bytes);
// ---- end of the bench memory block.

// Fills `entries` with the tensors of a torch.save file and says what container held them.
TensorContainer load_tensor_file(const std::string& path, NamedTensorList* entries);

// ---- Value diagnoses: one compared parameter's fingerprints (fingerprints.h) ----
// Moved out of a ComparisonView in one call; each accessor writes a new double tensor on the
// host that the caller owns: [B, projections()] for the projections, [B] for the norms.
class FingerprintView {
 public:
  FingerprintView() = default;
  explicit FingerprintView(Fingerprints fingerprints) : fingerprints_(std::move(fingerprints)) {}
  int64_t projections() const { return kFingerprintProjections; }
  int64_t elements() const;   // the parameter's element count
  int64_t projected() const;  // how many of them the projections read
  bool has_transposed() const;  // 2-D parameters: the reference was also projected transposed
  void candidate(at::Tensor* out) const;
  void reference(at::Tensor* out) const;
  void reference_transposed(at::Tensor* out) const;
  void candidate_norms(at::Tensor* out) const;
  void reference_norms(at::Tensor* out) const;
  void candidate_projected_norms(at::Tensor* out) const;

 private:
  const FingerprintPlan& plan() const;
  Fingerprints fingerprints_;
};
// ---- end of the value-diagnoses block ----

class ComparisonView {
 public:
  ComparisonView() = default;
  explicit ComparisonView(Comparison comparison) : comparison_(std::move(comparison)) {}
  int64_t batch_size() const { return comparison_.batch_size; }
  // How the reference ran ("cpu workers", "cuda streams", "cuda graphs", ...; "" where none ran).
  std::string reference_route() const { return comparison_.reference_route; }
  int64_t param_count() const { return static_cast<int64_t>(comparison_.params.size()); }
  std::string name(int64_t p) const;
  int64_t alias_count(int64_t p) const;
  std::string alias(int64_t p, int64_t k) const;
  ParamStatus status(int64_t p) const;
  int64_t expected_rank(int64_t p) const;
  int64_t expected_dim(int64_t p, int64_t d) const;
  int64_t candidate_rank(int64_t p) const;
  int64_t candidate_dim(int64_t p, int64_t d) const;
  // Field f (SampleStats order: max_abs, max_rel, max_tol_ratio, bad, candidate_non_finite,
  // reference_non_finite, rounding_level, excess, reference_rms, reference_max) of sample i.
  double stat(int64_t p, int64_t i, int f) const;
  // Every stat at once: *out = [param_count, batch_size, stat_fields()] doubles, zeros where not
  // compared.
  void stats(at::Tensor* out) const;
  static int stat_fields() { return SampleStats::kFields; }
  // The precision the reference ran in ("float", "double", ...), how its rounding level was
  // measured ("double", "perturbed parameters"; "" where it was not) and on which samples.
  std::string reference_precision() const { return comparison_.reference_precision; }
  std::string rounding_yardstick() const { return yardstick_name(comparison_.rounding_yardstick); }
  bool rounding_measured(int64_t p) const;
  int64_t rounding_sample_count() const { return static_cast<int64_t>(comparison_.rounding_samples.size()); }
  int64_t rounding_sample(int64_t k) const;
  // c: the rounding rule widens an element's tolerance by c times its sample's rounding level.
  static double rounding_multiple() { return kRoundingMultiple; }
  // Sketch mode: whether the sketch judged the parameter, its zone (a passed one has no
  // per-sample statistics) and its largest residual in units of the pass threshold.
  bool sketched(int64_t p) const;
  SketchZone sketch_zone(int64_t p) const;
  double sketch_residual_ratio(int64_t p) const;
  // ---- Value diagnoses: whether parameter p has fingerprints (it has per-sample
  // statistics), and them.
  bool has_fingerprints(int64_t p) const;
  FingerprintView fingerprints(int64_t p) const;
  // ---- end of the value-diagnoses block ----

 private:
  const ParamComparison& param(int64_t p) const;
  const SketchVerdict& sketch(int64_t p) const;
  Comparison comparison_;
};

// sketch_compare's result: the sum candidate's comparison then the mean one's (those given), and
// what the sketch spent.
class SketchView {
 public:
  SketchView() = default;
  explicit SketchView(SketchComparisons result) : result_(std::move(result)) {}
  int64_t comparison_count() const { return static_cast<int64_t>(result_.comparisons.size()); }
  ComparisonView comparison(int64_t k) const;
  int64_t forwards() const { return result_.cost.forwards; }
  int64_t backwards() const { return result_.cost.backwards; }
  int64_t exact_params() const { return result_.cost.exact_params; }
  double pass_fraction() const { return kSketchPassFraction; }
  double noise_multiplier() const { return kSketchNoiseMultiplier; }
  bool in_double() const { return result_.cost.in_double; }
  bool float_first() const { return result_.cost.float_first; }
  int64_t double_params() const { return result_.cost.double_params; }

 private:
  SketchComparisons result_;
};

// Sketch-compares the candidates given (either may be null) for the sum and the mean reductions.
SketchView sketch_compare(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                          const NamedTensorList* sum_candidate, const NamedTensorList* mean_candidate,
                          double atol, double rtol, ToleranceRule rule, int64_t projections,
                          SketchPrecision precision, uint64_t seed);

ComparisonView compare_with_reference(const NativeModel& model, const NativeBatch& batch,
                                      const NativeLoss& loss, int reduction,
                                      const NamedTensorList& candidate, double atol, double rtol,
                                      ToleranceRule rule);

// ---- Exact checks of several reductions at once ----
// The candidates of the reductions one comparison call checks.
class ReductionCandidates {
 public:
  void add(int reduction, const NamedTensorList& candidate);
  const std::vector<ReductionCandidate>& get() const { return items_; }

 private:
  std::vector<ReductionCandidate> items_;
};

class ComparisonList {
 public:
  ComparisonList() = default;
  explicit ComparisonList(std::vector<Comparison> comparisons) : comparisons_(std::move(comparisons)) {}
  int64_t size() const { return static_cast<int64_t>(comparisons_.size()); }
  ComparisonView get(int64_t k) const;

 private:
  std::vector<Comparison> comparisons_;
};

// One Comparison per candidate, in order, from one reference pass where that is exact (one sum
// backward per sample serves both reductions of a built-in loss), spread as `spread` says.
ComparisonList compare_reductions(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                  const ReductionCandidates& candidates, double atol, double rtol,
                                  ToleranceRule rule, const ReferenceSpread& spread);
// Sets the calling thread's intra-op thread count (its OpenMP count; 0 leaves it) and returns the
// previous one: unlike at::set_num_threads, no process-wide default changes.
int set_intra_op_threads_of_this_thread(int threads);

// psg4j::OneBlasThread for Java: OpenBLAS held at one thread, process-wide, from construction
// until deletion (Java's close()); holds nest and overlap across threads, and the last one to end
// restores the count (see Note [One BLAS thread for every psg4j computation]).
class OneBlasThreadHold {
 public:
  OneBlasThreadHold() = default;
  OneBlasThreadHold(const OneBlasThreadHold&) = delete;
  OneBlasThreadHold& operator=(const OneBlasThreadHold&) = delete;

 private:
  OneBlasThread hold_;
};

// OpenBLAS's process-wide thread count now (0 where no OpenBLAS is loaded).
int openblas_thread_count();
// Test hook: sets OpenBLAS's process-wide thread count, as a user's openblas_set_num_threads
// would; only tests call it (to see a hold lower it and restore it).
void set_openblas_threads_for_tests(int threads);
// ---- end of the block ----

// ---- Norms-only and clipped-sum candidates ----
// The reference's per-sample norms of one reduction: parameters in model order (a tied one once,
// with its aliases).
class SampleNormsView {
 public:
  SampleNormsView() = default;
  explicit SampleNormsView(SampleNorms norms) : norms_(std::move(norms)) {}
  int64_t batch_size() const { return norms_.whole.defined() ? norms_.whole.size(0) : 0; }
  int64_t param_count() const { return static_cast<int64_t>(norms_.parameters.size()); }
  std::string name(int64_t p) const;
  int64_t alias_count(int64_t p) const;
  std::string alias(int64_t p, int64_t k) const;
  // *out = [P, B] doubles ‖g_{i,p}‖ (per_parameter) or [B] doubles ‖g_i‖ (whole); the view's own
  // tensors, shared with the caller's handle (read them, do not write).
  void per_parameter(at::Tensor* out) const;
  void whole(at::Tensor* out) const;

 private:
  const TrainableParameter& param(int64_t p) const;
  SampleNorms norms_;
};

SampleNormsView reference_norms(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                int reduction, const ReferenceSpread& spread);

// How a clipped sum was clipped: the mode and its thresholds (see psg4j::Clipping).
class ClippingSpec {
 public:
  void set_mode(ClippingMode mode) { clipping_.mode = mode; }
  void add_threshold(double threshold) { clipping_.thresholds.push_back(threshold); }
  const Clipping& get() const { return clipping_; }

 private:
  Clipping clipping_;
};

class ClippedSumView {
 public:
  ClippedSumView() = default;
  explicit ClippedSumView(ClippedSumComparison comparison) : comparison_(std::move(comparison)) {}
  int64_t batch_size() const { return comparison_.batch_size; }
  int64_t param_count() const { return static_cast<int64_t>(comparison_.params.size()); }
  // The name the candidate gave parameter p, and the parameter's other names.
  std::string name(int64_t p) const;
  int64_t alias_count(int64_t p) const;
  std::string alias(int64_t p, int64_t k) const;
  int64_t rank(int64_t p) const;
  int64_t dim(int64_t p, int64_t d) const;
  double threshold(int64_t p) const;
  // [P, 9] doubles in ClippedSumStats order; [P, B] norms; [B] whole norms; [P, B] factors.
  void stats(at::Tensor* out) const;
  void norms(at::Tensor* out) const;
  void whole(at::Tensor* out) const;
  void factors(at::Tensor* out) const;
  // The known clipping bugs that reproduce failing parameters.
  int64_t match_count() const { return static_cast<int64_t>(comparison_.matches.size()); }
  std::string match_kind(int64_t k) const;
  std::string match_explanation(int64_t k) const;
  int64_t match_param_count(int64_t k) const;
  int64_t match_param(int64_t k, int64_t m) const;
  int64_t match_sample_count(int64_t k) const;
  int64_t match_sample(int64_t k, int64_t m) const;

 private:
  const TrainableParameter& param(int64_t p) const;
  const ClippingMatch& match(int64_t k) const;
  ClippedSumComparison comparison_;
};

// candidate: {parameter name or alias: Tensor[*shape]}, the sum over samples of one reduction.
ClippedSumView compare_clipped_sum(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                   int reduction, const NamedTensorList& candidate, const ClippingSpec& clipping,
                                   double atol, double rtol, const ReferenceSpread& spread);
// ---- end of the norms block ----

// What probe() found, moved out of the core in one call, with plain accessors. The independence
// accessors give empty findings when the probe stopped before them (has_independence() false).
class ProbeView {
 public:
  ProbeView() = default;
  explicit ProbeView(ProbeResult result);
  // NaN/Inf found first: "" (none), "input" or "output", and the samples holding them.
  std::string non_finite_where() const { return result_.non_finite.where; }
  int64_t non_finite_count() const { return static_cast<int64_t>(result_.non_finite.samples.size()); }
  int64_t non_finite_sample(int64_t k) const;
  bool deterministic() const { return result_.determinism.deterministic; }
  double max_abs_diff() const { return result_.determinism.max_abs_diff; }
  bool has_independence() const { return result_.independence.has_value(); }
  bool independent() const { return independence().independent; }
  std::string method() const { return independence().method; }
  std::string alone_route() const { return independence().alone_route; }
  std::string mixing_module() const { return independence().mixing_module; }
  bool dense() const { return independence().dense; }
  bool leaks_complete() const { return independence().leaks_complete; }
  // The reported samples (k-th) and the samples each one's output depends on (m-th).
  int64_t leak_target_count() const { return static_cast<int64_t>(targets_.size()); }
  int64_t leak_target(int64_t k) const;
  int64_t leak_source_count(int64_t k) const;
  int64_t leak_source(int64_t k, int64_t m) const;
  int64_t affected_count() const { return static_cast<int64_t>(independence().affected.size()); }
  int64_t affected(int64_t k) const;
  int64_t source_count() const { return static_cast<int64_t>(independence().sources.size()); }
  int64_t source(int64_t k) const;
  int64_t differs_alone_count() const { return static_cast<int64_t>(independence().differs_alone.size()); }
  int64_t differs_alone(int64_t k) const;
  // What the probe spent.
  int64_t batched_forwards() const { return result_.cost.batched_forwards; }
  int64_t vjps() const { return result_.cost.vjps; }
  int64_t vmapped_forwards() const { return result_.cost.vmapped_forwards; }
  int64_t sample_forwards() const { return result_.cost.sample_forwards; }
  double probe_ms() const { return result_.cost.ms; }

 private:
  const BatchIndependence& independence() const;
  ProbeResult result_;
  std::vector<int64_t> targets_;
};

// All probes (psg4j::probe): probe_samples bounds the samples whose sources are named.
ProbeView probe(const NativeModel& model, const NativeBatch& batch, int64_t probe_samples, double tolerance);
// The largest difference between two forwards of the batch (0 when they are identical).
double probe_determinism(const NativeModel& model, const NativeBatch& batch);

// ---- Layer capture for hooks-style samplers ----
// capture_layers' result: per captured layer use, its spec, parameter names and tensors.
class LayerCaptureView {
 public:
  LayerCaptureView() = default;
  explicit LayerCaptureView(std::vector<CapturedLayer> layers) : layers_(std::move(layers)) {}
  int64_t size() const { return static_cast<int64_t>(layers_.size()); }
  std::string kind(int64_t k) const { return at(k).spec.kind; }
  std::string name(int64_t k) const { return at(k).spec.name; }
  bool training(int64_t k) const { return at(k).spec.training; }
  int64_t parameter_count(int64_t k) const { return static_cast<int64_t>(at(k).spec.parameters.size()); }
  std::string parameter_local_name(int64_t k, int64_t m) const;
  // The model's name of that trainable parameter, "" when it is frozen.
  std::string parameter_trainable_name(int64_t k, int64_t m) const;
  void activations(int64_t k, at::Tensor* out) const { *out = at(k).activations; }
  void backprops(int64_t k, at::Tensor* out) const { *out = at(k).backprops; }
  // Conv options, per spatial dimension (empty for other kinds).
  int64_t spatial_rank(int64_t k) const { return static_cast<int64_t>(at(k).spec.stride.size()); }
  int64_t stride(int64_t k, int64_t d) const;
  int64_t padding(int64_t k, int64_t d) const;
  int64_t dilation(int64_t k, int64_t d) const;
  int64_t groups(int64_t k) const { return at(k).spec.groups; }
  bool exact_padding(int64_t k) const { return at(k).spec.exact_padding; }
  // Embedding.
  bool has_padding_idx(int64_t k) const { return at(k).spec.padding_idx.has_value(); }
  int64_t padding_idx(int64_t k) const { return at(k).spec.padding_idx.value_or(0); }
  // LayerNorm.
  int64_t normalized_rank(int64_t k) const { return static_cast<int64_t>(at(k).spec.normalized_shape.size()); }
  int64_t normalized_dim(int64_t k, int64_t d) const;
  double eps(int64_t k) const { return at(k).spec.eps; }

 private:
  const CapturedLayer& at(int64_t k) const;
  std::vector<CapturedLayer> layers_;
};

LayerCaptureView capture_layers(const NativeModel& model, const NativeBatch& batch, const NativeLoss& loss,
                                int reduction);
// ---- end of the layer capture block.

// ---- C++-frontend layer registry ----
// A user's layer forward (one Java callback serves every registered type; type_id says whose):
// fills `output` from `input` and the layer's parameters (in its slots' order) and returns 0, or
// returns non-zero after a throw (Java keeps the exception under `call_scope`, as for ForwardFn).
typedef int (*LayerForwardFn)(int64_t call_scope, int64_t type_id, const at::Tensor* input,
                              const std::vector<at::Tensor>* parameters, at::Tensor* output);
// Registers the layer type `name` (as Module::name() reports it) with its parameter slots.
void register_frontend_layer(const std::string& name, const std::vector<std::string>* slots, int64_t type_id,
                             LayerForwardFn forward);
// Fills `out` with the registered layer types that keep parameters psg4j can swap.
void frontend_layer_type_names(std::vector<std::string>* out);
// Sets `out` to a new layer of the registered type `type` whose parameters are `tensors` (the very
// tensors). `out` stays the caller's; a Sequential it is pushed into keeps its own reference.
void make_frontend_layer(const std::string& type, const std::vector<std::string>* names,
                         const std::vector<at::Tensor>* tensors, torch::nn::AnyModule* out);
// Sets `out` to a layer of `module`'s registered type holding `module`'s own parameter tensors.
void frontend_layer_of(torch::nn::Module* module, torch::nn::AnyModule* out);
// ---- end of the layer registry block ----

}  // namespace bridge
}  // namespace psg4j

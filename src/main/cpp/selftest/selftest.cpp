// Self-test and bench driver of the native core; needs no Java. Prints "N passed, M failed".
//   psg4j_selftest [--device cpu|cuda]          run the checks (default: cuda when available)
//   psg4j_selftest bench [--suite S] [--batch B] [--repeats R] [--device D] [--threads N]
//                        [--models DIR]          time the engines against one batched backward;
//                                                DIR holds <suite>.pt and <suite>_x.pt exported by
//                                                src/test/python/bench_python.py --export DIR
//   psg4j_selftest bench-table [--batches 32,256] [--repeats R] [--device D]
//                                                reference (eager / CUDA graphs), vmap, check and
//                                                batched backward per model and B
//   psg4j_selftest vmap-bench [same options]     the vmap engine's routes (rules, into reused
//                                                buffers, functorch), backward and write floor
#include "psg4j/clipped_sum.h"
#include "psg4j/compare.h"
#include "psg4j/devices.h"
#include "psg4j/custom_layers.h"
#include "psg4j/frontend_layers.h"
#include "psg4j/norms.h"
#include "psg4j/error.h"
#include "psg4j/fingerprints.h"
#include "psg4j/probes.h"
#include "psg4j/sketch.h"
#include "psg4j/reference.h"
#include "psg4j/blas_threads.h"
#include "psg4j/sample_workers.h"
#include "psg4j/rule_engine.h"
#include "psg4j/batch.h"
#include "psg4j/tensor_io.h"
#include "psg4j/vmap_engine.h"

#include <torch/script.h>
#include <torch/torch.h>

#if PSG4J_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <algorithm>
#include <atomic>
#include <dlfcn.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <tuple>

namespace {

using namespace psg4j;

int passed = 0;
int failed = 0;

void expect(bool ok, const std::string& what) {
  (ok ? passed : failed)++;
  std::printf("%s %s\n", ok ? "[ ok ]" : "[FAIL]", what.c_str());
}

void run_case(const std::string& name, const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    expect(false, name + " threw: " + e.what());
  }
}

const ParamComparison& find(const Comparison& c, const std::string& name) {
  for (const auto& p : c.params) {
    if (p.name == name) return p;
  }
  throw std::runtime_error("no parameter " + name + " in the comparison");
}

bool all_within(const ParamComparison& p) {
  return std::all_of(p.samples.begin(), p.samples.end(), [](const SampleStats& s) { return s.bad == 0; });
}

std::vector<int64_t> bad_samples(const ParamComparison& p) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < p.samples.size(); ++i) {
    if (p.samples[i].bad > 0) out.push_back(static_cast<int64_t>(i));
  }
  return out;
}

NamedTensors clone_all(const NamedTensors& in) {
  NamedTensors out;
  for (const auto& [n, t] : in) out.emplace_back(n, t.clone());
  return out;
}

// The vmap engine's gradients pass the check against the reference, for both reductions.
bool vmap_matches_reference(const Model& model, const Batch& batch, const Loss& loss,
                            const VmapOptions& options = {}) {
  for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
    const Problem problem{model, batch, loss, r};
    const Comparison c = compare_with_reference(problem, vmap_gradients(problem, options), Tolerance{});
    for (const auto& p : c.params) {
      if (p.status != ParamStatus::Compared || !all_within(p)) {
        std::printf("       %s: parameter %s differs (reduction %s)\n", model.describe().c_str(),
                    p.name.c_str(), to_string(r).c_str());
        return false;
      }
    }
  }
  return true;
}

// The message of the Error of `kind` that `body` throws, or "" if it throws none.
std::string error_of(ErrorKind kind, const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    if (e.kind() == kind) return e.what();
    std::printf("       unexpected error kind: %s\n", e.what());
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A layer the swap registry does not know.
struct ScaleImpl : torch::nn::Cloneable<ScaleImpl> {
  ScaleImpl() { reset(); }
  void reset() override { scale = register_parameter("scale", torch::ones({1})); }
  at::Tensor forward(const at::Tensor& x) { return x * scale; }
  at::Tensor scale;
};
TORCH_MODULE(Scale);

void vmap_checks(const torch::Device device) {
  namespace nn = torch::nn;
  torch::manual_seed(1);
  const int64_t B = 5;
  Loss l1;

  run_case("vmap equals the reference on standard layers (sum and mean)", [&] {
    struct Case {
      std::string name;
      nn::Sequential model;
      at::Tensor x;
      int64_t batch_dim;
    };
    std::vector<Case> cases{
        {"Linear 3-D", nn::Sequential(nn::Linear(4, 3)), torch::randn({B, 2, 4}), 0},
        {"Linear time-first", nn::Sequential(nn::Linear(4, 3)), torch::randn({2, B, 4}), 1},
        {"Conv2d stride 2 groups 2", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(2, 4, 3).stride(2).groups(2))),
         torch::randn({B, 2, 7, 7}), 0},
        {"ConvTranspose1d", nn::Sequential(nn::ConvTranspose1d(nn::ConvTranspose1dOptions(2, 3, 3).stride(2))),
         torch::randn({B, 2, 5}), 0},
        {"Embedding", nn::Sequential(nn::Embedding(10, 3)), torch::randint(0, 10, {B, 4}), 0},
        {"EmbeddingBag", nn::Sequential(nn::EmbeddingBag(10, 3)), torch::randint(0, 10, {B, 4}), 0},
        {"LayerNorm+GroupNorm", nn::Sequential(nn::GroupNorm(2, 4), nn::LayerNorm(nn::LayerNormOptions({4, 3}))),
         torch::randn({B, 4, 3}), 0},
        {"InstanceNorm2d", nn::Sequential(nn::InstanceNorm2d(nn::InstanceNorm2dOptions(3).affine(true))),
         torch::randn({B, 3, 4, 4}), 0},
        {"LSTM time-first", nn::Sequential(nn::LSTM(nn::LSTMOptions(3, 4).num_layers(2))),
         torch::randn({6, B, 3}), 1},
        {"GRU batch-first", nn::Sequential(nn::GRU(nn::GRUOptions(3, 4).batch_first(true))),
         torch::randn({B, 6, 3}), 0},
        {"RNN bidirectional", nn::Sequential(nn::RNN(nn::RNNOptions(3, 4).bidirectional(true))),
         torch::randn({6, B, 3}), 1},
        {"MultiheadAttention", nn::Sequential(nn::MultiheadAttention(nn::MultiheadAttentionOptions(4, 2))),
         torch::randn({3, B, 4}), 1},
    };
    for (auto& c : cases) {
      c.model->to(device);
      c.model->eval();
      auto model = frontend_model(c.model.ptr().get());
      Batch batch;
      batch.inputs = {c.x.to(device)};
      batch.batch_dim = c.batch_dim;
      expect(vmap_matches_reference(*model, batch, l1), "vmap " + c.name);
    }
  });

  run_case("the per-layer rules take the suite's layers and equal the reference and functorch", [&] {
    struct Case {
      std::string name;
      nn::Sequential model;
      at::Tensor x;
    };
    nn::Sequential frozen_bias(nn::Linear(4, 3), nn::Tanh(), nn::Linear(3, 2));
    frozen_bias[0]->as<nn::Linear>()->bias.requires_grad_(false);
    std::vector<Case> cases{
        {"mlp", nn::Sequential(nn::Linear(6, 5), nn::ReLU(), nn::Linear(5, 3)), torch::randn({B, 6})},
        {"seq", nn::Sequential(nn::Linear(4, 6), nn::LayerNorm(nn::LayerNormOptions({6})), nn::GELU(), nn::Linear(6, 4)),
         torch::randn({B, 3, 4})},
        {"cnn", nn::Sequential(nn::Conv2d(1, 4, 3), nn::ReLU(), nn::MaxPool2d(2), nn::Conv2d(4, 4, 2), nn::Flatten(),
                               nn::Linear(36, 3)),
         torch::randn({B, 1, 11, 11})},
        {"Conv2d stride 2 padding 1 dilation 2 groups 2",
         nn::Sequential(nn::Conv2d(nn::Conv2dOptions(2, 4, 3).stride(2).padding(1).dilation(2).groups(2))),
         torch::randn({B, 2, 9, 8})},
        {"Conv3d stride 2", nn::Sequential(nn::Conv3d(nn::Conv3dOptions(2, 3, 2).stride(2))),
         torch::randn({B, 2, 5, 4, 4})},
        {"Conv1d groups 3 no bias", nn::Sequential(nn::Conv1d(nn::Conv1dOptions(3, 6, 2).groups(3).bias(false))),
         torch::randn({B, 3, 7})},
        {"emb padding_idx", nn::Sequential(nn::Embedding(nn::EmbeddingOptions(10, 3).padding_idx(2)), nn::Flatten(),
                                           nn::Linear(12, 2)),
         torch::randint(0, 10, {B, 4})},
        {"LayerNorm over 2 dims", nn::Sequential(nn::LayerNorm(nn::LayerNormOptions({3, 4}))), torch::randn({B, 2, 3, 4})},
        {"frozen bias", frozen_bias, torch::randn({B, 4})},
    };
    for (auto& c : cases) {
      c.model->to(device);
      c.model->eval();
      auto model = frontend_model(c.model.ptr().get());
      Batch batch;
      batch.inputs = {c.x.to(device)};
      for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
        const Problem problem{*model, batch, l1, r};
        const auto ruled = rule_gradients(problem, 0, [&] {
          std::vector<at::Tensor> buffers;
          for (const auto& p : model->trainable_parameters()) {
            buffers.push_back(torch::full(batched_shape(B, p.second.sizes()), 7.0, p.second.options().requires_grad(false)));
          }
          return buffers;
        });
        expect(ruled.has_value(), "rules apply: " + c.name);
        if (!ruled) continue;
        const NamedTensors functorch = vmap_gradients(problem, VmapOptions{0, Randomness::Error, /*layer_rules=*/false});
        bool same = functorch.size() == ruled->size();
        for (size_t k = 0; same && k < ruled->size(); ++k) {
          same = torch::allclose((*ruled)[k], functorch[k].second, 1e-4, 1e-6);
        }
        expect(same, "rules equal functorch: " + c.name + " (" + to_string(r) + ")");
      }
      expect(vmap_matches_reference(*model, batch, l1), "rules' route equals the reference: " + c.name);
      expect(vmap_matches_reference(*model, batch, l1, VmapOptions{2, Randomness::Error}),
             "rules' route in chunks of 2: " + c.name);
    }
  });

  run_case("the per-layer rules leave what they do not cover exactly to functorch", [&] {
    nn::Linear shared_layer(4, 4);
    nn::Sequential tied(shared_layer, nn::ReLU(), shared_layer);
    nn::Sequential dropout_train(nn::Linear(4, 4), nn::Dropout(0.5));
    nn::Sequential batch_norm(nn::Linear(4, 4), nn::BatchNorm1d(4));
    nn::Sequential inplace(nn::ReLU(nn::ReLUOptions(true)), nn::Linear(4, 4));
    nn::Sequential flatten_batch(nn::Flatten(nn::FlattenOptions().start_dim(0)), nn::Linear(4 * B, 2));
    nn::Sequential plain(nn::Linear(B, 2));
    batch_norm->eval();
    tied->eval();
    inplace->eval();
    struct Case {
      std::string name;
      nn::Sequential model;
      int64_t batch_dim;
    };
    std::vector<Case> cases{{"tied", tied, 0}, {"dropout in train mode", dropout_train, 0},
                            {"BatchNorm", batch_norm, 0}, {"in-place ReLU", inplace, 0},
                            {"Flatten from dimension 0", flatten_batch, 0}, {"batch dimension 1", plain, 1}};
    for (auto& c : cases) {
      c.model->to(device);
      auto model = frontend_model(c.model.ptr().get());
      Batch batch;
      batch.inputs = {torch::randn({B, 4}, device)};
      if (c.batch_dim == 1) batch.inputs = {torch::randn({4, B}, device)};
      batch.batch_dim = c.batch_dim;
      bool made = false;
      const auto ruled = rule_gradients({*model, batch, l1, Reduction::Sum}, 0, [&] {
        made = true;
        return std::vector<at::Tensor>{};
      });
      expect(!ruled && !made, "rules decline: " + c.name);
    }
  });

  run_case("vmap into the caller's buffers: equal values, wrong buffers named", [&] {
    nn::Sequential net(nn::Linear(6, 5), nn::ReLU(), nn::Linear(5, 3));
    net->to(device);
    auto model = frontend_model(net.ptr().get());
    Batch batch;
    batch.inputs = {torch::randn({B, 6}, device)};
    for (bool rules : {true, false}) {
      const VmapOptions options{0, Randomness::Error, rules};
      const Problem problem{*model, batch, l1, Reduction::Mean};
      const NamedTensors expected = vmap_gradients(problem, options);
      NamedTensors buffers;
      for (const auto& [name, g] : expected) buffers.emplace_back(name, torch::full_like(g, 3.0).contiguous());
      const void* first = buffers[0].second.data_ptr();
      vmap_gradients_into(problem, options, buffers);
      vmap_gradients_into(problem, options, buffers);  // again into the same buffers
      bool same = true;
      for (size_t k = 0; k < expected.size(); ++k) same = same && torch::equal(expected[k].second, buffers[k].second);
      expect(same && buffers[0].second.data_ptr() == first,
             std::string("into equals the allocating call, in place (") + (rules ? "rules" : "functorch") + ")");
    }
    const Problem problem{*model, batch, l1, Reduction::Sum};
    auto wrong = [&](const std::function<void(NamedTensors&)>& spoil) {
      NamedTensors buffers = vmap_gradients(problem, {});
      spoil(buffers);
      return error_of(ErrorKind::BadInput, [&] { vmap_gradients_into(problem, {}, buffers); });
    };
    const std::string shape = wrong([&](NamedTensors& b) { b[1].second = torch::zeros({B + 1, 5}); });
    const std::string dtype = wrong([&](NamedTensors& b) { b[2].second = b[2].second.to(torch::kDouble); });
    const std::string missing = wrong([&](NamedTensors& b) { b.pop_back(); });
    const std::string unknown = wrong([&](NamedTensors& b) { b.emplace_back("9.weight", torch::zeros({1})); });
    const std::string shared = wrong([&](NamedTensors& b) { b[3].second = b[2].second.view(-1).narrow(0, 0, B * 3).view({B, 3}); });
    expect(contains(shape, "'0.bias'") && contains(shape, "shape"), "wrong shape named: " + shape);
    expect(contains(dtype, "'2.weight'") && contains(dtype, "dtype"), "wrong dtype named: " + dtype);
    expect(contains(missing, "'2.bias'"), "missing buffer named: " + missing);
    expect(contains(unknown, "'9.weight'"), "unknown buffer named: " + unknown);
    expect(contains(shared, "share memory"), "overlapping buffers refused: " + shared);
  });

  nn::Sequential mlp(nn::Linear(6, 5), nn::ReLU(), nn::Linear(5, 3));
  mlp->to(device);
  const auto mlp_model = frontend_model(mlp.ptr().get());
  Batch mlp_batch;
  mlp_batch.inputs = {torch::randn({B, 6}, device)};

  run_case("vmap in chunks equals vmap in one pass", [&] {
    const Problem problem{*mlp_model, mlp_batch, l1, Reduction::Mean};
    const NamedTensors whole = vmap_gradients(problem, {});
    const NamedTensors chunked = vmap_gradients(problem, VmapOptions{2, Randomness::Error});
    bool same = whole.size() == chunked.size();
    for (size_t k = 0; same && k < whole.size(); ++k) same = torch::allclose(whole[k].second, chunked[k].second);
    expect(same && vmap_matches_reference(*mlp_model, mlp_batch, l1, VmapOptions{2, Randomness::Error}),
           "chunk size 2 over 5 samples");
  });

  run_case("a cross-entropy function model with targets", [&] {
    const at::Tensor w = torch::randn({3, 6}, device).requires_grad_();
    auto model = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      return torch::matmul(in[0], p[0].t());
    }, "function model");
    Batch batch = mlp_batch;
    batch.targets = {torch::randint(0, 3, {B}, torch::TensorOptions().dtype(torch::kLong).device(device))};
    Loss ce;
    ce.kind = LossKind::CrossEntropy;
    expect(vmap_matches_reference(*model, batch, ce), "function model, cross_entropy");
  });

  run_case("random ops: an error by default, allowed when asked", [&] {
    nn::Sequential dropout(nn::Linear(6, 3), nn::Dropout(0.5));
    dropout->to(device);
    dropout->train();
    auto model = frontend_model(dropout.ptr().get());
    const Problem problem{*model, mlp_batch, l1, Reduction::Sum};
    const std::string message = error_of(ErrorKind::Unsupported, [&] { vmap_gradients(problem, {}); });
    expect(contains(message, "randomness") && contains(message, "microbatch") && contains(message, "aten::"),
           "dropout under randomness 'error' is Unsupported, naming the op: " + message);
    const NamedTensors grads = vmap_gradients(problem, VmapOptions{0, Randomness::Different});
    expect(grads.size() == 2 && grads[0].second.size(0) == B, "randomness 'different' runs");
  });

  run_case("ops vmap cannot batch are Unsupported and name the op", [&] {
    const at::Tensor w = torch::randn({3, 6}, device).requires_grad_();
    auto item_model = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      const at::Tensor h = torch::matmul(in[0], p[0].t());
      return h.sum().item<double>() > 0 ? h : -h;  // data-dependent control flow
    }, "item model");
    const std::string item = error_of(ErrorKind::Unsupported, [&] {
      vmap_gradients({*item_model, mlp_batch, l1, Reduction::Sum}, {});
    });
    expect(contains(item, "aten::item") && contains(item, "--engine microbatch"), ".item(): " + item);
    auto inplace_model = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      in[0].mul_(2);  // writes into the caller's batch
      return torch::matmul(in[0], p[0].t());
    }, "in-place model");
    Batch copy;
    copy.inputs = {mlp_batch.inputs[0].clone()};
    const at::Tensor before = copy.inputs[0].clone();
    const std::string inplace = error_of(ErrorKind::Unsupported, [&] {
      vmap_gradients({*inplace_model, copy, l1, Reduction::Sum}, {});
    });
    expect(contains(inplace, "aten::mul_"), "in-place write into the input: " + inplace);
  });

  run_case("a pass that fails with shared parameters is retried with per-sample ones", [&] {
    const at::Tensor w = torch::randn({3, 6}, device).requires_grad_();
    int calls = 0;
    auto flaky = function_model({{"w", w}}, [&calls](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      if (calls++ == 0) throw Error(ErrorKind::CallbackFailed, "first call fails");
      return torch::matmul(in[0], p[0].t());
    }, "flaky model");
    const NamedTensors grads = vmap_gradients({*flaky, mlp_batch, l1, Reduction::Sum}, {});
    expect(calls == 2 && grads[0].second.size(0) == B, "second (per-sample) pass succeeds");
  });

  run_case("a layer the swap registry does not know is named", [&] {
    nn::Sequential seq(nn::Linear(6, 6), Scale());
    auto model = frontend_model(seq.ptr().get());
    const std::string message = error_of(ErrorKind::BadInput, [&] {
      vmap_gradients({*model, mlp_batch, l1, Reduction::Sum}, {});
    });
    expect(contains(message, "ScaleImpl") && contains(message, "microbatch"), "unknown layer: " + message);
  });

  // ---- the layer registry
  run_case("layer registry: every type is named, Linear's slots are its weight and bias", [&] {
    const std::vector<std::string> names = swappable_layer_type_names();
    bool named = !names.empty();
    for (const std::string& name : names) named = named && !name.empty();
    nn::Linear linear(3, 2);
    const LayerType* type = find_layer_type(*linear);
    const ParameterSlots slots = parameter_slots(*linear);
    expect(named && type != nullptr && type->name == "Linear" && slots.size() == 2 && slots[0].first == "weight" &&
               slots[0].second == &linear->weight && slots[1].first == "bias" && slots[1].second == &linear->bias,
           "Linear found with its weight and bias members");
    nn::Linear no_bias(nn::LinearOptions(3, 2).bias(false));
    expect(parameter_slots(*no_bias).size() == 1, "a Linear without bias has one slot to swap");
    nn::ReLU relu;
    expect(find_layer_type(*relu) != nullptr && !has_parameter_slots(*relu), "ReLU is known, with nothing to swap");
    const std::string message = error_of(ErrorKind::BadInput, [&] { parameter_slots(*Scale()); });
    expect(contains(message, "Linear, ") && contains(message, "MultiheadAttention") &&
               contains(message, "FrontendLayers.register"), "unknown layer lists the registered types: " + message);
  });

  run_case("layer registry: a user's layer type runs on the vmap engine", [&] {
    register_custom_layer("selftest.Scale", {"scale", "shift"},
                          [](const at::Tensor& x, const std::vector<at::Tensor>& p) { return x * p[0] + p[1]; });
    const std::vector<std::string> names = swappable_layer_type_names();
    expect(names.back() == "selftest.Scale", "registered after the standard types");
    expect(!error_of(ErrorKind::BadInput, [] { register_custom_layer("selftest.Scale", {"w"}, [](auto& x, auto&) { return x; }); }).empty() &&
               !error_of(ErrorKind::BadInput, [] { register_custom_layer("Conv2d", {"w"}, [](auto& x, auto&) { return x; }); }).empty(),
           "a second registration of a name, or a standard layer's name, is refused");
    nn::Sequential with_scale(nn::Linear(6, 4));
    with_scale->push_back("scale", make_custom_layer("selftest.Scale", {{"scale", torch::randn({4}).requires_grad_()},
                                                                         {"shift", torch::randn({4}).requires_grad_()}}));
    with_scale->push_back(nn::Linear(4, 2));
    with_scale->to(device);
    auto scaled = frontend_model(with_scale.ptr().get());
    expect(vmap_matches_reference(*scaled, mlp_batch, l1), "Linear, selftest.Scale, Linear: vmap equals the reference");
    expect(parameter_slots(*with_scale[1]).size() == 2, "the user's layer has its two slots");
  });

  run_case("parameters are restored after a failure", [&] {
    nn::Sequential dropout(nn::Linear(6, 3), nn::Dropout(0.5));
    dropout->to(device);
    auto linear = dropout[0]->as<nn::Linear>();
    const at::Tensor weight = linear->weight;
    auto model = frontend_model(dropout.ptr().get());
    error_of(ErrorKind::Unsupported, [&] { vmap_gradients({*model, mlp_batch, l1, Reduction::Sum}, {}); });
    expect(linear->weight.is_same(weight), "Linear weight is the original tensor again");
  });
}

// A model whose sample `target`'s output gets sample `source`'s features added: mixing confined to
// one pair, invisible to any probe that does not look at both samples.
std::shared_ptr<Model> pair_mixing_model(const at::Tensor& w, int64_t target, int64_t source) {
  return function_model({{"w", w}}, [=](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
    const at::Tensor h = torch::matmul(in[0], p[0].t());
    if (h.size(0) <= std::max(target, source)) return h;  // a one-sample batch runs clean
    at::Tensor leak = torch::zeros_like(h);
    leak.select(0, target).copy_(h.select(0, source));
    return h + leak;
  }, "pair mixing");
}

int64_t partition_vjps(int64_t batch_size) {
  int64_t bits = 0;
  while ((int64_t{1} << bits) < batch_size) ++bits;
  return 2 * bits;
}

void probe_checks(const torch::Device device) {
  namespace nn = torch::nn;
  torch::manual_seed(2);
  const int64_t B = 6;
  const at::Tensor x = torch::randn({B, 5}, device);
  Batch batch;
  batch.inputs = {x};
  const ProbeOptions options;

  run_case("a clean model is batch-independent and deterministic, at 2 + 2log2(B) + 1 passes", [&] {
    nn::Sequential mlp(nn::Linear(5, 4), nn::ReLU(), nn::Linear(4, 3));
    mlp->to(device);
    auto model = frontend_model(mlp.ptr().get());
    const ProbeResult result = probe(*model, batch, options);
    const BatchIndependence& found = *result.independence;
    expect(found.independent && found.method == "input_gradient" && found.leaks.empty() && found.affected.empty() &&
               found.alone_route == "vmap",
           "mlp: no leaks, samples alone through vmap");
    expect(result.cost.batched_forwards == 2 && result.cost.vjps == partition_vjps(B) &&
               result.cost.vmapped_forwards == 1 && result.cost.sample_forwards == 0,
           "mlp: 2 forwards, " + std::to_string(result.cost.vjps) + " VJPs, 1 vmapped forward");
    expect(probe_determinism(*model, batch).deterministic, "mlp: deterministic");
  });

  run_case("mixing confined to one pair is found at any position", [&] {
    bool all_found = true;
    std::string missed;
    for (const auto& [size, target, source] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {8, 5, 6}, {8, 0, 7}, {16, 1, 4}, {33, 32, 0}, {64, 17, 40}}) {
      Batch wide;
      wide.inputs = {torch::randn({size, 5}, device)};
      const at::Tensor w = torch::randn({3, 5}, device).requires_grad_();
      const ProbeResult result = probe(*pair_mixing_model(w, target, source), wide, options);
      const BatchIndependence& found = *result.independence;
      const bool ok = !found.independent && found.leaks.size() == 1 && found.leaks.count(target) &&
                      found.leaks.at(target) == std::vector<int64_t>{source} &&
                      found.affected == std::vector<int64_t>{target} && found.sources == std::vector<int64_t>{source} &&
                      !found.dense && found.leaks_complete && result.cost.vjps == partition_vjps(size) + 1;
      if (!ok) {
        all_found = false;
        missed += " B=" + std::to_string(size) + " " + std::to_string(target) + "<-" + std::to_string(source);
      }
    }
    expect(all_found, "pairs (target <- source) found exactly, decoded from the partition passes:" +
                          (missed.empty() ? std::string(" all") : missed + " missed"));
  });

  run_case("BatchNorm in train mode mixes, localized to its layer", [&] {
    nn::Sequential seq(nn::Linear(5, 4), nn::BatchNorm1d(4), nn::Linear(4, 3));
    seq->to(device);
    seq->train();
    auto model = frontend_model(seq.ptr().get());
    const BatchIndependence result = probe_batch_independence(*model, batch, options);
    expect(!result.independent && result.leaks.at(0).size() == B - 1 && result.mixing_module == "1" &&
               result.dense && result.alone_route == "none" && result.affected.size() == B,
           "BatchNorm1d train: every sample leaks into every other, module '" + result.mixing_module + "'");
    seq->eval();
    expect(probe_batch_independence(*model, batch, options).independent, "BatchNorm1d eval: independent");
  });

  run_case("a batch-mean subtraction in a Java-like function mixes", [&] {
    const at::Tensor w = torch::randn({3, 5}, device).requires_grad_();
    auto model = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      return torch::matmul(in[0] - in[0].mean(0, true), p[0].t());
    }, "centering");
    const BatchIndependence result = probe_batch_independence(*model, batch, options);
    expect(!result.independent && result.mixing_module.empty() && result.dense && result.affected.size() == B &&
               result.differs_alone.size() == B,
           "centering: flagged densely, all samples differ alone, not localizable");
  });

  run_case("integer inputs take the gradient route from the embedding's output", [&] {
    nn::Sequential emb(nn::Embedding(20, 4), nn::Flatten(), nn::Linear(12, 2));
    emb->to(device);
    auto model = frontend_model(emb.ptr().get());
    Batch ids;
    ids.inputs = {torch::randint(0, 20, {B, 3}, torch::TensorOptions().dtype(torch::kLong).device(device))};
    const BatchIndependence clean = probe_batch_independence(*model, ids, options);
    const at::Tensor table = torch::randn({20, 4}, device).requires_grad_();
    auto mixing = function_model({{"table", table}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      const at::Tensor e = torch::embedding(p[0], in[0]);
      return e + e.roll(1, 0);
    }, "embedding plus its neighbour");
    const BatchIndependence mixed = probe_batch_independence(*mixing, ids, options);
    expect(clean.independent && clean.method == "intermediate_gradient" && !mixed.independent &&
               mixed.method == "intermediate_gradient" && mixed.leaks.at(1) == std::vector<int64_t>{0} &&
               mixed.leaks.at(0) == std::vector<int64_t>{B - 1} && !mixed.dense,
           "ids: clean Embedding independent, neighbour leak sample 0 -> 1 ... B-1 -> 0 decoded");
  });

  run_case("cumsum over the batch leaks earlier samples only", [&] {
    const at::Tensor w = torch::randn({3, 5}, device).requires_grad_();
    auto model = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      return torch::matmul(in[0], p[0].t()).cumsum(0);
    }, "cumsum");
    const BatchIndependence result = probe_batch_independence(*model, batch, options);
    expect(!result.leaks.count(0) && result.leaks.at(B - 1).size() == B - 1 && result.affected.size() == B - 1,
           "cumsum: 0 clean, last from all");
  });

  run_case("NaN in an input or the output is non_finite, before determinism", [&] {
    nn::Sequential mlp(nn::Linear(5, 3));
    mlp->to(device);
    auto model = frontend_model(mlp.ptr().get());
    Batch poisoned;
    poisoned.inputs = {x.clone()};
    poisoned.inputs[0][2][1] = std::numeric_limits<float>::quiet_NaN();
    const ProbeResult input = probe(*model, poisoned, options);
    auto logs = function_model({}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>&) {
      return torch::log(in[0].select(1, 0).unsqueeze(1));  // NaN where the first feature is negative
    }, "log");
    const ProbeResult output = probe(*logs, batch, options);
    const at::Tensor negative = (x.select(1, 0) < 0).nonzero().flatten().cpu();
    const std::vector<int64_t> expected(negative.data_ptr<int64_t>(), negative.data_ptr<int64_t>() + negative.numel());
    expect(input.non_finite.where == "input" && input.non_finite.samples == std::vector<int64_t>{2} &&
               !input.independence && output.non_finite.where == "output" && output.non_finite.samples == expected &&
               !expected.empty() && output.determinism.deterministic,
           "NaN input names sample 2; NaN output names the samples with a negative first feature");
  });

  run_case("the output's samples: batch dimension, else its one dimension of size B", [&] {
    const at::Tensor w = torch::randn({3, 5}, device).requires_grad_();
    auto transposed = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      return torch::matmul(in[0], p[0].t()).t();  // [3, B]
    }, "transposed");
    auto ambiguous = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      const at::Tensor h = torch::matmul(in[0], p[0].t());
      return torch::matmul(h, h.t()).unsqueeze(0);  // [1, B, B]
    }, "ambiguous");
    auto argmax = function_model({{"w", w}}, [](const std::vector<at::Tensor>& in, const std::vector<at::Tensor>& p) {
      return torch::matmul(in[0], p[0].t()).argmax(1);
    }, "argmax");
    const bool found_dim_1 = probe_batch_independence(*transposed, batch, options).independent;
    const std::string two_dims = error_of(ErrorKind::BadInput, [&] { probe(*ambiguous, batch, options); });
    const std::string integer = error_of(ErrorKind::BadInput, [&] { probe(*argmax, batch, options); });
    const bool refused = contains(two_dims, "[1, 6, 6]") && contains(integer, "floating-point output");
    expect(found_dim_1 && refused, "[3, B] probed along dim 1; [1, B, B] and an integer output are bad input");
  });

  run_case("dropout in train mode is non-deterministic", [&] {
    nn::Sequential seq(nn::Linear(5, 4), nn::Dropout(0.5));
    seq->to(device);
    seq->train();
    auto model = frontend_model(seq.ptr().get());
    const Determinism result = probe_determinism(*model, batch);
    expect(!result.deterministic && result.max_abs_diff > 0, "dropout: two forwards differ");
    expect(!probe(*model, batch, options).determinism.deterministic, "dropout: probe() finds it too");
  });
}

// Exact mode: sample workers give the same numbers at every count and leave the
// thread settings as they were; one sum pass serves both reductions of a built-in loss.
void exact_mode_checks(const torch::Device device) {
  torch::manual_seed(3);
  const int64_t B = 9;
  torch::nn::Sequential seq(torch::nn::Linear(6, 16), torch::nn::Tanh(), torch::nn::Linear(16, 5));
  seq->to(device);
  auto model = frontend_model(seq.ptr().get());
  Batch batch;
  batch.inputs = {torch::randn({B, 6}, device)};
  Loss l1;
  const Problem sum_problem{*model, batch, l1, Reduction::Sum};
  const Problem mean_problem{*model, batch, l1, Reduction::Mean};
  const Tolerance tol;

  run_case("microbatch reference bit-identical at 1, 2, 3 workers", [&] {
    const NamedTensors one = microbatch_gradients(sum_problem, Spread{1});
    bool same = true;
    for (int workers : {2, 3}) {
      const NamedTensors many = microbatch_gradients(sum_problem, Spread{workers});
      for (size_t k = 0; k < one.size(); ++k) same = same && torch::equal(one[k].second, many[k].second);
    }
    expect(same, "microbatch_gradients equal at 1, 2 and 3 workers");
  });

  run_case("comparison stats bit-identical at 1, 2, 4 workers", [&] {
    NamedTensors cand = microbatch_gradients(sum_problem, Spread{1});
    cand[0].second.add_(torch::randn_like(cand[0].second) * 1e-5);  // numbers that are not all zero
    const at::Tensor one = stats_tensor(compare_with_reference(sum_problem, cand, tol, Spread{1}));
    bool same = one.abs().sum().item<double>() > 0;
    for (int workers : {2, 4}) {
      same = same && torch::equal(one, stats_tensor(compare_with_reference(sum_problem, cand, tol, Spread{workers})));
    }
    expect(same, "stats tensor equal at 1, 2 and 4 workers");
  });

  run_case("thread settings restored after a multi-worker pass", [&] {
    const int aten = at::get_num_threads();
    const int openmp = openmp_threads_of_this_thread();
    const int openblas = openblas_threads();
    int openblas_inside = -1, openmp_inside = -1;
    for_each_sample_gradient(sum_problem, model->trainable_parameters(), [&](int64_t i, const std::vector<at::Tensor>&) {
      if (i == 0) {
        openblas_inside = openblas_threads();
        openmp_inside = openmp_threads_of_this_thread();
      }
    }, Spread{3});
    expect(at::get_num_threads() == aten && openmp_threads_of_this_thread() == openmp &&
               openblas_threads() == openblas,
           "ATen " + std::to_string(aten) + ", OpenMP " + std::to_string(openmp) + ", OpenBLAS " +
               std::to_string(openblas) + " threads before and after");
    expect((openblas == 0 || openblas_inside == 1) && (openmp == 0 || openmp_inside == 1),
           "one OpenMP and one OpenBLAS thread inside a worker (got " + std::to_string(openmp_inside) + ", " +
               std::to_string(openblas_inside) + ")");
  });

  run_case("the lowest failing sample is reported at any worker count", [&] {
    Batch bad = batch;
    bad.inputs = {batch.inputs[0].clone()};
    bad.inputs[0][4][0] = std::numeric_limits<float>::quiet_NaN();
    auto throws_at = [&](int workers) {
      std::atomic<int> calls{0};
      auto failing = function_model(model->trainable_parameters(), [&](const std::vector<at::Tensor>& in,
                                                                        const std::vector<at::Tensor>& p) {
        ++calls;
        if (std::isnan(in[0].sum().item<double>())) throw std::runtime_error("sample with a NaN");
        return seq->forward(in[0]);
      }, "failing model");
      try {
        microbatch_gradients({*failing, bad, l1, Reduction::Sum}, Spread{workers});
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    const std::string one = throws_at(1);
    expect(one.find("sample 4") != std::string::npos && throws_at(3) == one, "error names sample 4: " + one);
  });

  // Every built-in loss: one pass for both reductions gives the verdicts and (to rounding) the
  // numbers of two passes. cross_entropy's targets ignore some positions, and all of sample 2's.
  auto loss_cases = [&] {
    std::vector<std::tuple<std::string, Loss, std::vector<at::Tensor>>> cases;
    Loss mse;
    mse.kind = LossKind::MSE;
    Loss sum;
    sum.kind = LossKind::Sum;
    Loss ce;
    ce.kind = LossKind::CrossEntropy;
    cases.emplace_back("l1", l1, std::vector<at::Tensor>{});
    cases.emplace_back("mse", mse, std::vector<at::Tensor>{torch::randn({B, 5}, device)});
    cases.emplace_back("sum", sum, std::vector<at::Tensor>{});
    at::Tensor classes = torch::randint(0, 5, {B}, torch::dtype(torch::kLong).device(device));
    classes[2] = -100;
    cases.emplace_back("cross_entropy", ce, std::vector<at::Tensor>{classes});
    return cases;
  };
  for (auto& [name, loss, targets] : loss_cases()) {
    run_case("one pass for both reductions: " + name, [&, name = name, loss = loss, targets = targets] {
      Batch b = batch;
      b.targets = targets;
      const Problem s{*model, b, loss, Reduction::Sum}, m{*model, b, loss, Reduction::Mean};
      NamedTensors sum_cand = microbatch_gradients(s), mean_cand = microbatch_gradients(m);
      mean_cand[0].second[1].add_(1e-2);  // a planted error: sample 1 of the mean candidate
      const std::vector<Comparison> both = compare_with_reference(*model, b, loss,
          {ReductionCandidate{Reduction::Sum, sum_cand}, ReductionCandidate{Reduction::Mean, mean_cand}}, tol, Spread{2});
      const Comparison sum_alone = compare_with_reference(s, sum_cand, tol);
      const Comparison mean_alone = compare_with_reference(m, mean_cand, tol);
      bool same_verdicts = true;
      for (size_t p = 0; p < both[1].params.size(); ++p) {
        same_verdicts = same_verdicts && bad_samples(both[0].params[p]) == bad_samples(sum_alone.params[p]) &&
                        bad_samples(both[1].params[p]) == bad_samples(mean_alone.params[p]);
      }
      // The mean's counts are the same; its max |c - r| differ by rounding (the sum gradient
      // scaled is not bit for bit the mean backward unless the multiple is a power of two).
      const at::Tensor one_pass = stats_tensor(both[1]), two_pass = stats_tensor(mean_alone);
      const bool same_counts = torch::equal(one_pass.index({"...", at::indexing::Slice(3, 6)}),
                                            two_pass.index({"...", at::indexing::Slice(3, 6)}));
      const at::Tensor max_abs_one = one_pass.index({"...", 0}), max_abs_two = two_pass.index({"...", 0});
      const double rounding = (max_abs_one - max_abs_two).abs().max().item<double>();
      char rounding_text[32];
      std::snprintf(rounding_text, sizeof rounding_text, "%.2g", rounding);
      expect(same_verdicts && same_counts && bad_samples(both[1].params[0]).size() == 1 &&
                 torch::equal(stats_tensor(both[0]), stats_tensor(sum_alone)) &&
                 torch::allclose(max_abs_one, max_abs_two, 1e-5, 1e-6),
             name + ": same verdicts, sum stats identical, mean counts identical and max |c - r| within " +
                 rounding_text);
    });
  }

  run_case("a custom loss takes two passes, a built-in one one", [&] {
    std::atomic<int> forwards{0};
    auto counting = function_model(model->trainable_parameters(), [&](const std::vector<at::Tensor>& in,
                                                                       const std::vector<at::Tensor>&) {
      ++forwards;
      return seq->forward(in[0]);
    }, "counting model");
    Loss custom;
    custom.kind = LossKind::Custom;
    custom.custom = [](const at::Tensor& out, const std::vector<at::Tensor>&, Reduction r) {
      return r == Reduction::Sum ? out.abs().sum() : out.abs().mean();
    };
    const NamedTensors cand = microbatch_gradients(sum_problem);
    const NamedTensors mean_cand = microbatch_gradients(mean_problem);
    // The allclose rule runs the reference alone; the rounding rule adds, for each of its samples,
    // the reference again in the model's precision and its yardstick's, and one forward per
    // yardstick tried: this model's forward ignores the parameters it is given, so double fails
    // (float weights, double input) and the one-ulp yardstick is tried next.
    const int measured = static_cast<int>(rounding_samples(B).size());
    std::vector<int> counts;
    for (ToleranceRule rule : {ToleranceRule::Allclose, ToleranceRule::Rounding}) {
      for (const Loss& loss : {l1, custom}) {
        forwards = 0;
        compare_with_reference(*counting, batch, loss,
                               {ReductionCandidate{Reduction::Sum, cand}, ReductionCandidate{Reduction::Mean, mean_cand}},
                               Tolerance{tol.atol, tol.rtol, rule});
        counts.push_back(forwards.load());
      }
    }
    expect(counts == std::vector<int>({static_cast<int>(B), static_cast<int>(2 * B), static_cast<int>(B) + 2 * measured + 2,
                                       static_cast<int>(2 * B) + 4 * measured + 2}),
           "forwards: l1 " + std::to_string(counts[0]) + " (B), custom " + std::to_string(counts[1]) +
               " (2B); with the rounding level measured on " + std::to_string(measured) + " samples: " +
               std::to_string(counts[2]) + ", " + std::to_string(counts[3]));
  });
}

// ---- norms and clipped sums ----
// The clipped sum of `grads` ([B, *shape] each) as Opacus computes it, in float.
NamedTensors opacus_clipped_sum(const NamedTensors& grads, double c, bool floored) {
  std::vector<at::Tensor> squares;
  for (const auto& [name, g] : grads) squares.push_back(g.reshape({g.size(0), -1}).norm(2, 1));
  const at::Tensor norms = at::stack(squares, 1).norm(2, 1);
  at::Tensor factor = c / (norms + 1e-6);
  if (floored) factor = factor.clamp_max(1.0);
  NamedTensors out;
  for (const auto& [name, g] : grads) out.emplace_back(name, at::einsum("i,i...", {factor, g}));
  return out;
}

void norms_checks(const torch::Device device) {
  torch::manual_seed(5);
  const int64_t B = 7;
  torch::nn::Sequential seq(torch::nn::Linear(5, 8), torch::nn::Tanh(), torch::nn::Linear(8, 3));
  seq->to(device);
  auto model = frontend_model(seq.ptr().get());
  Batch batch;
  batch.inputs = {torch::randn({B, 5}, device) * 3};
  Loss l1;
  const Problem problem{*model, batch, l1, Reduction::Mean};
  const NamedTensors grads = microbatch_gradients(problem, Spread{1});
  const Tolerance tol;

  run_case("reference norms equal the norms of the reference gradients, at 1 and 3 workers", [&] {
    const SampleNorms one = reference_norms(problem, Spread{1});
    at::Tensor squares = at::zeros({B}, at::kDouble);
    bool close = true;
    for (size_t p = 0; p < grads.size(); ++p) {
      const at::Tensor n = grads[p].second.to(at::kDouble).reshape({B, -1}).norm(2, 1).cpu();
      close = close && at::allclose(one.per_parameter[p], n, 1e-12, 1e-12);
      squares += n * n;
    }
    close = close && at::allclose(one.whole, squares.sqrt(), 1e-12, 1e-12);
    const SampleNorms three = reference_norms(problem, Spread{3});
    expect(close && at::equal(one.whole, three.whole) && at::equal(one.per_parameter, three.per_parameter),
           "norms match torch's and are bit-identical at 1 and 3 workers");
  });

  run_case("Opacus's flat clipped sum passes, identically at 1 and 3 workers; an unfloored one is named", [&] {
    const SampleNorms norms = reference_norms(problem, Spread{1});
    // A threshold between the norms, so some samples are clipped and some are not.
    const double c = norms.whole.median().item<double>();
    const Clipping flat{ClippingMode::Flat, {c}};
    const ClippedSumComparison one = compare_clipped_sum(problem, opacus_clipped_sum(grads, c, true), flat, tol, Spread{1});
    const ClippedSumComparison three =
        compare_clipped_sum(problem, opacus_clipped_sum(grads, c, true), flat, tol, Spread{3});
    bool passes = one.matches.empty();
    for (const ClippedSumStats& s : one.params) passes = passes && s.bad == 0;
    expect(passes && at::equal(clipped_sum_stats_tensor(one), clipped_sum_stats_tensor(three)),
           "Opacus's summed_grad passes; stats equal at 1 and 3 workers");
    const ClippedSumComparison bug =
        compare_clipped_sum(problem, opacus_clipped_sum(grads, c, false), flat, tol, Spread{2});
    const bool named = !bug.matches.empty() && bug.matches[0].kind == "clipping_not_floored" &&
                       !bug.matches[0].samples.empty();
    expect(bug.params[0].bad > 0 && named, "the unfloored sum fails and is diagnosed clipping_not_floored");
  });

  run_case("bad clipping thresholds are refused", [&] {
    int refused = 0;
    for (const Clipping& bad : {Clipping{ClippingMode::Flat, {0.0}}, Clipping{ClippingMode::Flat, {-1.0}},
                                Clipping{ClippingMode::PerLayer, {1.0, 2.0}}, Clipping{ClippingMode::Flat, {}}}) {
      try {
        parameter_thresholds(bad, 4);
      } catch (const Error& e) {
        refused += e.kind() == ErrorKind::BadInput;
      }
    }
    expect(refused == 4, "zero, negative, a wrong per-layer count and no threshold: " + std::to_string(refused) + " of 4");
  });
}
// ---- end of the norms block ----

// ---- Devices ----

// A layer whose forward reads a value to the host (.item()): fine eagerly, never under CUDA-graph
// capture (a synchronizing copy), so a graphed reference must fall back to eager streams.
struct HostReadImpl : torch::nn::Cloneable<HostReadImpl> {
  HostReadImpl() { reset(); }
  void reset() override { weight = register_parameter("weight", torch::randn({4, 3}) * 0.5); }
  at::Tensor forward(const at::Tensor& x) { return x.matmul(weight) * (1.0 + 0.0 * weight.sum().item<double>()); }
  at::Tensor weight;
};
TORCH_MODULE(HostRead);

// The TF32 switch is process-wide on any build (at::Context), so the scope's save and restore is
// checked on the CPU too: set on, turned off by the scope, kept off while a scope on another thread
// overlaps, and put back by the last one to end.
void tf32_scope_checks() {
  run_case("ExactFloat32Scope turns TF32 off and restores it, nested", [&] {
    at::Context& context = at::globalContext();
    const at::Float32Precision before = context.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL);
    context.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, at::Float32Precision::TF32);
    const bool on_at_start = tf32_allowed();
    bool off_inside = true;
    {
      ExactFloat32Scope outer;
      off_inside = !tf32_allowed();
      { ExactFloat32Scope nested; off_inside = off_inside && !tf32_allowed(); }
      off_inside = off_inside && !tf32_allowed();  // the nested end did not restore early
    }
    const bool restored = tf32_allowed() && context.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL) ==
                                                at::Float32Precision::TF32;
    context.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, before);
    expect(on_at_start && off_inside && restored, "TF32 on, off in nested scopes, restored by the outer one's end");
  });
  run_case("a scope outlived by one on another thread restores only when that one ends", [&] {
    at::Context& context = at::globalContext();
    const at::Float32Precision before = context.float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL);
    context.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, at::Float32Precision::TF32);
    std::atomic<int> stage{0};
    bool off_after_first_ended = false;
    std::thread second([&] {
      while (stage.load() < 1) std::this_thread::yield();
      ExactFloat32Scope late;
      stage = 2;
      while (stage.load() < 3) std::this_thread::yield();
      off_after_first_ended = !tf32_allowed();
    });
    {
      ExactFloat32Scope first;
      stage = 1;
      while (stage.load() < 2) std::this_thread::yield();
    }
    stage = 3;
    second.join();
    const bool restored = tf32_allowed();
    context.setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, before);
    expect(off_after_first_ended && restored, "overlapping scopes on 2 threads: off until the last ends, then restored");
  });
}

bool same_gradients(const NamedTensors& a, const NamedTensors& b, double rtol, double atol) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k].first != b[k].first || !torch::allclose(a[k].second.cpu(), b[k].second.cpu(), rtol, atol)) return false;
  }
  return true;
}

bool all_pass(const Comparison& c) {
  return std::all_of(c.params.begin(), c.params.end(),
                     [](const ParamComparison& p) { return p.status == ParamStatus::Compared && all_within(p); });
}

#if PSG4J_WITH_CUDA
// Counts the synchronizing CUDA calls c10's sync-debug mode reports (one warning each) on this thread.
class SyncCounter : public c10::WarningHandler {
 public:
  void process(const c10::Warning& warning) override {
    if (contains(warning.msg(), "synchroniz")) ++count;
  }
  int count = 0;
};

// The synchronizing calls of one streaming check (one worker: all on this thread) at batch size B.
int syncs_of_check(const Model& model, int64_t B, const torch::Device device) {
  torch::manual_seed(3);
  Batch batch;
  batch.inputs = {torch::randn({B, 6}, device)};
  Loss l1;
  const Problem problem{model, batch, l1, Reduction::Sum};
  const NamedTensors candidate = microbatch_gradients(problem, Spread{1});
  torch::cuda::synchronize();
  SyncCounter counter;
  c10::WarningUtils::WarningHandlerGuard guard(&counter);
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
  try {
    compare_with_reference(problem, candidate, Tolerance{}, Spread{1});
  } catch (...) {
    c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    throw;
  }
  c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  return counter.count;
}
#endif

// What runs on CUDA only: the stream workers, CUDA graphs and their fallback, numbers against a
// CPU run of the same model and batch, and (with CUDA's headers) no host round trip per sample.
void cuda_checks(const torch::Device device) {
  namespace nn = torch::nn;
  ExactFloat32Scope exact;  // as the Java API holds it around a check (see devices.h)
  torch::manual_seed(11);
  const int64_t B = 9;
  nn::Sequential net(nn::Linear(6, 16), nn::Tanh(), nn::Linear(16, 4));
  nn::Sequential cpu_net = std::dynamic_pointer_cast<nn::SequentialImpl>(net->clone());
  net->to(device);
  auto model = frontend_model(net.ptr().get());
  auto cpu_model = frontend_model(cpu_net.ptr().get());
  const at::Tensor x_cpu = torch::randn({B, 6});
  const at::Tensor classes_cpu = torch::randint(0, 4, {B}, torch::kLong);
  Batch batch, cpu_batch;
  batch.inputs = {x_cpu.to(device)};
  batch.targets = {classes_cpu.to(device)};
  cpu_batch.inputs = {x_cpu};
  cpu_batch.targets = {classes_cpu};
  Loss ce;
  ce.kind = LossKind::CrossEntropy;

  run_case("cuda: the reference equals a CPU run of the same model and batch (float32 tolerance)", [&] {
    bool close = true;
    for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
      close = close && same_gradients(microbatch_gradients({*model, batch, ce, r}),
                                      microbatch_gradients({*cpu_model, cpu_batch, ce, r}), 1e-4, 1e-5);
    }
    expect(close, "cuda reference == cpu reference, sum and mean");
  });

  run_case("cuda: 4 stream workers give what 1 gives; the route says cuda streams", [&] {
    const Problem problem{*model, batch, ce, Reduction::Mean};
    const NamedTensors one = microbatch_gradients(problem, Spread{1});
    const NamedTensors four = microbatch_gradients(problem, Spread{4});
    const Comparison c = compare_with_reference(problem, one, Tolerance{}, Spread{4});
    // Equal to float32 rounding (cuBLAS promises bitwise results per stream, not across streams
    // sharing a handle); whether they are bit-identical too is printed, not asserted.
    const bool bitwise = same_gradients(one, four, 0, 0);
    expect(same_gradients(one, four, 1e-6, 1e-7) && all_pass(c) && c.reference_route == "cuda streams",
           std::string("1 and 4 streams equal (") + (bitwise ? "bit-identical" : "not bit-identical") + "); route '" +
               c.reference_route + "'");
  });

  run_case("cuda: both reductions in one pass, a wrong candidate caught at its sample, stats as on CPU", [&] {
    const NamedTensors sum = microbatch_gradients({*model, batch, ce, Reduction::Sum});
    const NamedTensors mean = microbatch_gradients({*model, batch, ce, Reduction::Mean});
    NamedTensors wrong = clone_all(mean);
    wrong[0].second.select(0, 2).mul_(1.5);
    const std::vector<Comparison> c = compare_with_reference(
        *model, batch, ce, {ReductionCandidate{Reduction::Sum, sum}, ReductionCandidate{Reduction::Mean, wrong}},
        Tolerance{}, Spread{3});
    NamedTensors wrong_cpu;
    for (const auto& [n, t] : wrong) wrong_cpu.emplace_back(n, t.cpu());
    const Comparison on_cpu = compare_with_reference({*cpu_model, cpu_batch, ce, Reduction::Mean}, wrong_cpu, Tolerance{});
    const ParamComparison& w = find(c[1], "0.weight");
    const ParamComparison& w_cpu = find(on_cpu, "0.weight");
    bool stats_close = w.samples.size() == w_cpu.samples.size();
    for (size_t i = 0; stats_close && i < w.samples.size(); ++i) {
      stats_close = w.samples[i].bad == w_cpu.samples[i].bad &&
                    std::abs(w.samples[i].max_abs_err - w_cpu.samples[i].max_abs_err) <=
                        1e-5 + 1e-3 * w_cpu.samples[i].max_abs_err;
    }
    expect(all_pass(c[0]) && bad_samples(w) == std::vector<int64_t>{2} && stats_close &&
               w.fingerprints && w.fingerprints->candidate.device().is_cpu(),
           "sum passes, mean's sample 2 caught, numbers as on CPU, fingerprints on the host");
  });

  run_case("cuda: CUDA graphs give what eager streams give (both reductions), or say why not", [&] {
    const NamedTensors sum = microbatch_gradients({*model, batch, ce, Reduction::Sum});
    const NamedTensors mean = microbatch_gradients({*model, batch, ce, Reduction::Mean});
    NamedTensors wrong = clone_all(sum);
    wrong[1].second.select(0, 5).add_(1.0);
    const Spread graphs{2, true};
    const std::vector<Comparison> c = compare_with_reference(
        *model, batch, ce, {ReductionCandidate{Reduction::Sum, wrong}, ReductionCandidate{Reduction::Mean, mean}},
        Tolerance{}, graphs);
    const NamedTensors replayed = microbatch_gradients({*model, batch, ce, Reduction::Mean}, graphs);
    const std::string expected_route =
        cuda_compiled() ? "cuda graphs" : "cuda streams (this psg4j was built without CUDA headers: no graph capture)";
    expect(c[0].reference_route == expected_route && same_gradients(replayed, mean, 1e-6, 1e-7) && all_pass(c[1]) &&
               bad_samples(find(c[0], "0.bias")) == std::vector<int64_t>{5},
           "graphs == eager; wrong sample 5 caught; route '" + c[0].reference_route + "'");
  });

  run_case("cuda: a model that reads the device in its forward falls back to eager streams", [&] {
    HostRead host_read_module;
    host_read_module->to(device);
    auto host_read = frontend_model(host_read_module.ptr().get());
    Batch b;
    b.inputs = {torch::randn({B, 4}, device)};
    Loss l1;
    const Problem problem{*host_read, b, l1, Reduction::Sum};
    const NamedTensors eager = microbatch_gradients(problem, Spread{2});
    const Comparison c = compare_with_reference(problem, eager, Tolerance{}, Spread{2, true});
    const bool fell_back = cuda_compiled() ? c.reference_route.rfind("cuda streams (graph capture failed: ", 0) == 0
                                           : c.reference_route.rfind("cuda streams (", 0) == 0;
    expect(fell_back && all_pass(c), "route '" + c.reference_route + "', the check still passes");
  });

  run_case("cuda: the lowest failing sample's error is reported, as on CPU", [&] {
    Batch b = batch;
    at::Tensor targets = classes_cpu.clone();
    targets[4] = 7;  // out of range for 4 classes
    targets[6] = 9;
    b.targets = {targets.to(device)};
    const std::string message = error_of(ErrorKind::BadInput, [&] {
      microbatch_gradients({*model, b, ce, Reduction::Sum}, Spread{4});
    });
    expect(contains(message, "sample 4"), "names sample 4: " + message.substr(0, message.find('\n')));
  });

#if PSG4J_WITH_CUDA
  run_case("cuda: a streaming check's synchronizing calls do not grow with B (8 vs 32)", [&] {
    // First that the counter sees one: a read of a device value to the host synchronizes.
    int seen = 0;
    {
      SyncCounter counter;
      c10::WarningUtils::WarningHandlerGuard guard(&counter);
      c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_WARN);
      (void)torch::ones({1}, device).sum().item<double>();
      c10::cuda::warning_state().set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
      seen = counter.count;
    }
    const int at8 = syncs_of_check(*model, 8, device);
    const int at32 = syncs_of_check(*model, 32, device);
    expect(seen >= 1 && at8 == at32, "counter sees .item() (" + std::to_string(seen) + "); synchronizing calls: " +
                                         std::to_string(at8) + " at B=8, " + std::to_string(at32) + " at B=32");
  });
#endif
}
// ---- end of the devices block ----

void checks(const torch::Device device) {
  torch::manual_seed(0);
  const int64_t B = 5, F = 4, K = 3;
  torch::nn::Linear linear(F, K);
  linear->to(device);
  torch::nn::Sequential seq(linear);
  auto model = frontend_model(seq.ptr().get());
  const at::Tensor x = torch::randn({B, F}, device);
  Batch batch;
  batch.inputs = {x};
  Loss l1;

  run_case("Linear reference equals its closed form (sum and mean, 1e-6)", [&] {
    for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
      const NamedTensors ref = microbatch_gradients({*model, batch, l1, r});
      const at::Tensor out = linear->forward(x).detach();
      const double scale = r == Reduction::Sum ? 1.0 : 1.0 / K;
      const at::Tensor backprop = out.sign() * scale;                     // [B, K]
      const at::Tensor grad_w = backprop.unsqueeze(2) * x.unsqueeze(1);  // [B, K, F]
      expect(torch::allclose(ref[0].second, grad_w, 1e-6, 1e-6) &&
                 torch::allclose(ref[1].second, backprop, 1e-6, 1e-6) && ref[0].first == "0.weight",
             "closed form, reduction " + to_string(r));
    }
  });

  const NamedTensors truth = microbatch_gradients({*model, batch, l1, Reduction::Sum});
  const Problem problem{*model, batch, l1, Reduction::Sum};
  const Tolerance tol;

  run_case("correct candidate passes", [&] {
    const Comparison c = compare_with_reference(problem, truth, tol);
    expect(all_within(find(c, "0.weight")) && all_within(find(c, "0.bias")), "correct candidate passes");
  });

  run_case("perturbed element is found at its sample", [&] {
    NamedTensors bad = clone_all(truth);
    bad[1].second[3][1] += 0.01;
    const Comparison c = compare_with_reference(problem, bad, tol);
    expect(bad_samples(find(c, "0.bias")) == std::vector<int64_t>{3} && all_within(find(c, "0.weight")),
           "perturbed 0.bias sample 3 flagged alone");
  });

  run_case("sketch: a correct candidate passes at sketch cost, a perturbed one is decided exactly", [&] {
    const NamedTensors truth_mean = microbatch_gradients({*model, batch, l1, Reduction::Mean});
    NamedTensors bad = clone_all(truth);
    bad[1].second[3][1] += 0.01;
    const SketchComparisons clean = sketch_compare(*model, batch, l1, {{Reduction::Sum, truth}, {Reduction::Mean, truth_mean}},
                                                   tol, SketchOptions{2, 11});
    const SketchComparisons planted = sketch_compare(*model, batch, l1, {{Reduction::Sum, bad}}, tol, SketchOptions{2, 11});
    const ParamComparison& bias = find(planted.comparisons[0], "0.bias");
    const ParamComparison& weight = find(planted.comparisons[0], "0.weight");
    expect(clean.cost.exact_params == 0 && clean.cost.backwards == 2 &&
               find(clean.comparisons[1], "0.weight").sketch->zone == SketchZone::Pass,
           "clean sum and mean pass with one set of backwards");
    expect(bias.sketch->zone == SketchZone::Fail && bad_samples(bias) == std::vector<int64_t>{3} &&
               weight.sketch->zone == SketchZone::Pass && weight.samples.empty() && planted.cost.exact_params == 1,
           "perturbed 0.bias sample 3 localized by the reference on 0.bias alone");
  });

  run_case("swapped samples are both flagged", [&] {
    NamedTensors bad = clone_all(truth);
    bad[0].second.index_copy_(0, torch::tensor({1, 2}, torch::dtype(torch::kLong).device(device)),
                              truth[0].second.index_select(0, torch::tensor({2, 1}, torch::dtype(torch::kLong).device(device))));
    const Comparison c = compare_with_reference(problem, bad, tol);
    expect(bad_samples(find(c, "0.weight")) == std::vector<int64_t>({1, 2}), "swap of samples 1, 2 flagged");
  });

  run_case("mean candidate not scaled by B fails", [&] {
    const NamedTensors mean_truth = microbatch_gradients({*model, batch, l1, Reduction::Mean});
    NamedTensors unscaled;
    for (const auto& [n, t] : mean_truth) unscaled.emplace_back(n, t / B);
    const Comparison c = compare_with_reference({*model, batch, l1, Reduction::Mean}, unscaled, tol);
    expect(bad_samples(find(c, "0.weight")).size() == static_cast<size_t>(B), "unscaled mean flagged on every sample");
  });

  run_case("missing, extra and wrong-shape parameters", [&] {
    NamedTensors cand{{"0.weight", truth[0].second.transpose(1, 2)}, {"1.weight", truth[1].second}};
    const Comparison c = compare_with_reference(problem, cand, tol);
    expect(find(c, "0.weight").status == ParamStatus::Shape, "wrong shape reported");
    expect(find(c, "0.bias").status == ParamStatus::Missing, "missing parameter reported");
    expect(find(c, "1.weight").status == ParamStatus::Extra, "extra parameter reported");
  });

  run_case("NaN is never a match", [&] {
    NamedTensors bad = clone_all(truth);
    bad[0].second[4][0][0] = std::numeric_limits<float>::quiet_NaN();
    const Comparison c = compare_with_reference(problem, bad, tol);
    const auto& w = find(c, "0.weight");
    expect(bad_samples(w) == std::vector<int64_t>{4} && w.samples[4].candidate_non_finite == 1,
           "NaN at 0.weight sample 4 flagged as non-finite");
  });

  // ---- Value diagnoses: fingerprints ----
  run_case("fingerprints: linear in the gradient, transposed reference, norms, bounded projection", [&] {
    NamedTensors doubled;
    for (const auto& [n, t] : truth) doubled.emplace_back(n, t * 2);
    const Comparison c = compare_with_reference(problem, doubled, tol);
    const Fingerprints& f = *find(c, "0.weight").fingerprints;
    expect(torch::allclose(f.candidate, f.reference * 2, 1e-6, 1e-9) &&
               torch::allclose(f.candidate_norm, f.reference_norm * 2, 1e-6, 1e-9) &&
               f.reference_norm.min().item<double>() > 0 && f.plan->projected() == K * F,
           "a doubled candidate's projections and norms are twice the reference's");
    // Each sample's [K, F] gradient transposed to [F, K] and laid out as [K, F] again.
    NamedTensors transposed{{"0.weight", truth[0].second.transpose(1, 2).contiguous().reshape({B, K, F})},
                            {"0.bias", truth[1].second}};
    const Comparison t = compare_with_reference(problem, transposed, tol);
    const Fingerprints& ft = *find(t, "0.weight").fingerprints;
    expect(torch::allclose(ft.candidate, ft.reference_transposed, 1e-6, 1e-9) &&
               !torch::allclose(ft.candidate, ft.reference, 1e-3, 1e-3) && !find(t, "0.bias").fingerprints->reference_transposed.defined(),
           "the reference projected transposed is the transposed candidate's projection; 1-D has none");
    const auto plan = fingerprint_plan({300, 70});
    bool in_range = std::is_sorted(plan->indices.begin(), plan->indices.end());
    for (size_t s = 0; s < plan->indices.size(); ++s) {
      const int64_t q = plan->indices[s], r = plan->transposed_indices[s];
      in_range &= q >= 0 && q < 21000 && r == (q % 300) * 70 + q / 300;
    }
    expect(plan->projected() == kFingerprintElements && in_range && fingerprint_plan({300, 70})->weights == plan->weights,
           "a large parameter projects kFingerprintElements elements, with a fixed seed");
  });
  // ---- end of the value-diagnoses block ----

  run_case("time-first batch dimension", [&] {
    Batch time_first;
    time_first.inputs = {x.unsqueeze(0).expand({2, B, F}).transpose(0, 1).transpose(0, 1).contiguous()};
    time_first.batch_dim = 1;
    const NamedTensors ref = microbatch_gradients({*model, time_first, l1, Reduction::Sum});
    // Each sample appears at two time steps with the same value: twice the batch-first gradient.
    expect(torch::allclose(ref[0].second, truth[0].second * 2, 1e-6, 1e-6), "batch dim 1 slices samples");
  });

  run_case("bad input is a typed error", [&] {
    auto throws_bad_input = [&](const Batch& b) {
      try {
        b.validate();
      } catch (const Error& e) {
        return e.kind() == ErrorKind::BadInput;
      }
      return false;
    };
    Batch empty;
    empty.inputs = {torch::randn({0, F}, device)};
    Batch out_of_range;
    out_of_range.inputs = {x};
    out_of_range.batch_dim = 2;
    Batch mismatched;
    mismatched.inputs = {x, torch::randn({B + 1, F}, device)};
    expect(throws_bad_input(empty) && throws_bad_input(out_of_range) && throws_bad_input(mismatched),
           "empty batch, batch dim out of range, mismatched batch sizes");
  });

  run_case("a TorchScript error's op message comes first", [&] {
    // The interpreter's layout: context lines (even unindented ones) may follow a "<--- HERE".
    const std::string traceback =
        "The following operation failed in the TorchScript interpreter.\n"
        "Traceback of TorchScript, serialized code (most recent call last):\n"
        "  File \"code/__torch__/torch/nn/modules/linear.py\", line 12, in forward\n"
        "    return torch.linear(input, weight, bias)\n"
        "           ~~~~~~~~~~~~ <--- HERE\n"
        "\n"
        "Traceback of TorchScript, original code (most recent call last):\n"
        "  File \"model.py\", line 3, in f\n"
        "def f(x):\n"
        "    return F.linear(x, w)\n"
        "           ~~~~~~~~ <--- HERE\n"
        "torch.jit.script(f)\n"
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (6x7 and 8x16)\n";
    const std::string cause = "RuntimeError: mat1 and mat2 shapes cannot be multiplied (6x7 and 8x16)";
    const std::string prefixed = cause_first("running M on sample 0 failed: " + traceback);
    expect(essential_line(traceback) == cause && essential_line("plain\nmore") == "plain",
           "essential_line: the op's message of a traceback, else the first line");
    expect(prefixed.substr(0, prefixed.find('\n')) == "running M on sample 0 failed: " + cause &&
               prefixed.find("original code") != std::string::npos && cause_first(prefixed) == prefixed,
           "cause_first: the cause after the caller's prefix, the traceback kept below, idempotent");
  });

  vmap_checks(device);
  probe_checks(device);
  exact_mode_checks(device);
  norms_checks(device);
  tf32_scope_checks();
  if (device.is_cuda()) cuda_checks(device);
}

// The DESIGN §7 suite as C++-frontend modules.
std::map<std::string, std::pair<torch::nn::Sequential, at::Tensor>> suite(int64_t B, torch::Device d) {
  namespace nn = torch::nn;
  torch::manual_seed(0);
  std::map<std::string, std::pair<nn::Sequential, at::Tensor>> s;
  s["mlp"] = {nn::Sequential(nn::Linear(784, 256), nn::ReLU(), nn::Linear(256, 10)), torch::randn({B, 784})};
  s["cnn"] = {nn::Sequential(nn::Conv2d(1, 16, 5), nn::ReLU(), nn::MaxPool2d(2), nn::Conv2d(16, 32, 5),
                             nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(), nn::Linear(512, 10)),
              torch::randn({B, 1, 28, 28})};
  s["seq"] = {nn::Sequential(nn::Linear(64, 128), nn::LayerNorm(nn::LayerNormOptions({128})), nn::GELU(),
                             nn::Linear(128, 64)),
              torch::randn({B, 16, 64})};
  s["emb"] = {nn::Sequential(nn::Embedding(1000, 64), nn::Flatten(), nn::Linear(512, 10)),
              torch::randint(0, 1000, {B, 8})};
  for (auto& [name, entry] : s) {
    entry.first->to(d);
    entry.second = entry.second.to(d);
  }
  return s;
}

double median_ms(const std::function<void()>& f, int repeats, torch::Device d) {
  std::vector<double> ms;
  f();  // warm-up
  for (int r = 0; r < repeats; ++r) {
    synchronize(d);  // all earlier work done: the clock starts on an idle device
    const auto t0 = std::chrono::steady_clock::now();
    f();
    synchronize(d);  // queued work is part of the call's time
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

struct BenchModel {
  std::shared_ptr<Model> model;
  at::Tensor x;
  std::shared_ptr<void> keep_alive;  // the module the model borrows
};

// The suite as C++-frontend modules. With a models folder (Python's export) the modules take the
// exported weights and inputs, so the engines run on exactly what torch.func runs on, and the
// TorchScript models themselves join as "<suite>-ts".
std::map<std::string, BenchModel> bench_models(int64_t B, torch::Device d, const std::string& models_dir) {
  std::map<std::string, BenchModel> out;
  for (auto& [name, entry] : suite(B, d)) {
    BenchModel frontend{frontend_model(entry.first.ptr().get()), entry.second, entry.first.ptr()};
    if (!models_dir.empty()) {
      torch::jit::Module module = torch::jit::load(models_dir + "/" + name + ".pt", d);
      module.eval();
      torch::NoGradGuard no_grad;
      for (const auto& p : module.named_parameters()) entry.first->named_parameters()[p.name].copy_(p.value);
      frontend.x = load_tensor_file(models_dir + "/" + name + "_x.pt").entries.at(0).second.to(d);
      out[name + "-ts"] = {torchscript_model(module), frontend.x, nullptr};
    }
    out[name] = frontend;
  }
  return out;
}

void bench(int64_t B, int repeats, torch::Device d, const std::string& only, const std::string& models_dir) {
  std::printf("bench: B=%lld, threads=%d, device=%s, models=%s, median of %d (ms)\n",
              static_cast<long long>(B), at::get_num_threads(), d.str().c_str(),
              models_dir.empty() ? "C++ frontend" : models_dir.c_str(), repeats);
  for (auto& [name, entry] : bench_models(B, d, models_dir)) {
    if (!only.empty() && name.rfind(only, 0) != 0) continue;
    const Model& model = *entry.model;
    Batch batch;
    batch.inputs = {entry.x};
    Loss l1;
    const Problem problem{model, batch, l1, Reduction::Sum};
    const double reference = median_ms([&] { microbatch_gradients(problem); }, repeats, d);
    if (std::getenv("PSG4J_BENCH_REFERENCE_ONLY")) {  // for profiling the loop alone
      std::printf("%-6s reference %8.2f\n", name.c_str(), reference);
      continue;
    }
    const NamedTensors candidate = microbatch_gradients(problem);
    const double check = median_ms([&] { compare_with_reference(problem, candidate, Tolerance{}); }, repeats, d);
    const NamedTensors mean_candidate = microbatch_gradients({model, batch, l1, Reduction::Mean});
    const double check_both = median_ms([&] {
      compare_with_reference(model, batch, l1, {ReductionCandidate{Reduction::Sum, candidate},
                                                ReductionCandidate{Reduction::Mean, mean_candidate}}, Tolerance{});
    }, repeats, d);
    std::printf("%-6s check of both reductions (one reference pass) %8.2f\n", name.c_str(), check_both);
    // ---- Value diagnoses: what the fingerprints add to that check, taken here alone
    // from gradients already in memory (colder caches than in the check: an upper bound).
    const double fingerprints = median_ms([&] {
      for (const NamedTensors* grads : {&candidate, &mean_candidate}) {
        for (size_t k = 0; k < grads->size(); ++k) {
          const at::Tensor& g = (*grads)[k].second;
          Fingerprints f = start_fingerprints(g.sizes().slice(1), B);
          for (int64_t i = 0; i < B; ++i) take_fingerprints(f, i, g.select(0, i), candidate[k].second.select(0, i));
        }
      }
    }, repeats, d);
    std::printf("%-6s fingerprints of both reductions %8.2f (%.1f%% of that check)\n", name.c_str(), fingerprints,
                100 * fingerprints / check_both);
    // ---- end of the value-diagnoses block
    const double vmap = median_ms([&] { vmap_gradients(problem, {}); }, repeats, d);
    std::vector<at::Tensor> params;
    for (const auto& p : model.trainable_parameters()) params.push_back(p.second);
    const double backward = median_ms([&] {
      auto loss = l1(model.forward({entry.x}), {}, Reduction::Sum, entry.x.size(0));
      torch::autograd::grad({loss}, params);
    }, repeats, d);
    std::printf("%-6s reference %8.2f  check %8.2f  vmap %7.2f  batched backward %7.2f  "
                "vmap/backward %5.2fx  reference/vmap %5.1fx\n",
                name.c_str(), reference, check, vmap, backward, vmap / backward, reference / vmap);
  }
}

// The issue-11 table: per model and batch size, the reference on eager streams (CPU workers on the
// CPU) and replaying CUDA graphs, the vmap engine, a check of both reductions (one reference pass
// each way), and one batched backward, TF32 off as in a check. "graphs" says which route the
// graphed reference took (a fallback names its cause).
void bench_table(const std::vector<int64_t>& batches, int repeats, torch::Device d) {
  ExactFloat32Scope exact;
  std::printf("bench-table: device=%s, median of %d (ms), TF32 off\n", d.str().c_str(), repeats);
  std::printf("%-5s %5s %10s %10s %9s %11s %9s  %s\n", "model", "B", "ref-eager", "ref-graphs", "vmap", "check-both",
              "backward", "graphs route");
  for (int64_t B : batches) {
    for (auto& [name, entry] : bench_models(B, d, "")) {
      const Model& model = *entry.model;
      Batch batch;
      batch.inputs = {entry.x};
      Loss l1;
      const Problem problem{model, batch, l1, Reduction::Sum};
      const double eager = median_ms([&] { microbatch_gradients(problem, Spread{0, false}); }, repeats, d);
      const double graphs = median_ms([&] { microbatch_gradients(problem, Spread{0, true}); }, repeats, d);
      const std::string route = for_each_reference_gradient(model, batch, l1, {Reduction::Sum},
                                                            model.trainable_parameters(), Spread{0, true},
                                                            [](int64_t, const ReferenceGradient&) {});
      const double vmap = median_ms([&] { vmap_gradients(problem, {}); }, repeats, d);
      const NamedTensors sum = microbatch_gradients(problem);
      const NamedTensors mean = microbatch_gradients({model, batch, l1, Reduction::Mean});
      const double check = median_ms([&] {
        compare_with_reference(model, batch, l1, {ReductionCandidate{Reduction::Sum, sum},
                                                  ReductionCandidate{Reduction::Mean, mean}}, Tolerance{});
      }, repeats, d);
      std::vector<at::Tensor> params;
      for (const auto& p : model.trainable_parameters()) params.push_back(p.second);
      const double backward = median_ms([&] {
        auto loss = l1(model.forward({entry.x}), {}, Reduction::Sum, B);
        torch::autograd::grad({loss}, params);
      }, repeats, d);
      std::printf("%-5s %5lld %10.2f %10.2f %9.2f %11.2f %9.3f  %s\n", name.c_str(), static_cast<long long>(B), eager,
                  graphs, vmap, check, backward, route.c_str());
      std::fflush(stdout);
    }
  }
}

std::vector<int64_t> batch_list(const std::string& text) {
  std::vector<int64_t> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    out.push_back(std::stoll(text.substr(begin, end - begin)));
    begin = end + 1;
  }
  return out;
}

// Bytes per second this process writes into memory it has touched before: the median of a few fills
// of a 512 MiB buffer, far beyond any cache. The floor of an engine that writes B × |θ| floats.
double write_bandwidth_bytes_per_s() {
  at::Tensor buffer = at::empty({int64_t{128} << 20}, at::kFloat);
  buffer.fill_(0);
  std::vector<double> seconds;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    buffer.fill_(static_cast<float>(r));
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  return static_cast<double>(buffer.nbytes()) / seconds[seconds.size() / 2];
}

// The vmap engine's routes against one batched backward, one line per model ("key value" pairs):
// vmap (the per-layer rules where they apply, results allocated), vmap-into (the same into the
// caller's reused buffers), vmap-functorch (functorch's route only), backward, and the floor:
// B × |θ| × 4 bytes written at the bandwidth measured here.
void vmap_bench(int64_t B, int repeats, torch::Device d, const std::string& only, const std::string& models_dir) {
  const double bandwidth = write_bandwidth_bytes_per_s();
  std::printf("vmap-bench: B=%lld threads=%d write_bandwidth_GBps=%.2f median of %d (ms)\n",
              static_cast<long long>(B), at::get_num_threads(), bandwidth / 1e9, repeats);
  for (auto& [name, entry] : bench_models(B, d, models_dir)) {
    if (!only.empty() && name.rfind(only, 0) != 0) continue;
    const Model& model = *entry.model;
    Batch batch;
    batch.inputs = {entry.x};
    Loss l1;
    const Problem problem{model, batch, l1, Reduction::Sum};
    int64_t parameters = 0;
    std::vector<at::Tensor> params;
    for (const auto& p : model.trainable_parameters()) {
      params.push_back(p.second);
      parameters += p.second.numel();
    }
    const double vmap = median_ms([&] { vmap_gradients(problem, {}); }, repeats, d);
    const NamedTensors buffers = vmap_gradients(problem, {});
    const double into = median_ms([&] { vmap_gradients_into(problem, {}, buffers); }, repeats, d);
    const double functorch =
        median_ms([&] { vmap_gradients(problem, VmapOptions{0, Randomness::Error, false}); }, repeats, d);
    const double backward = median_ms([&] {
      auto loss = l1(model.forward({entry.x}), {}, Reduction::Sum, entry.x.size(0));
      torch::autograd::grad({loss}, params);
    }, repeats, d);
    const double floor_ms = 1e3 * static_cast<double>(B * parameters * 4) / bandwidth;
    std::printf("%-7s vmap %.3f vmap-into %.3f vmap-functorch %.3f backward %.3f floor %.3f params %lld\n",
                name.c_str(), vmap, into, functorch, backward, floor_ms, static_cast<long long>(parameters));
  }
}

// N intra-op threads, BLAS included: bytedeco's OpenBLAS keeps a thread pool of its own that
// at::set_num_threads leaves as it is, and on a loaded machine its waits cost more than the
// gemms (an mlp backward at B = 256: 172 ms with the pool, 5 ms without).
void set_threads(int n) {
  at::set_num_threads(n);
  using SetBlasThreads = void (*)(int);
  if (auto set_blas = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set_blas(n);
}

}  // namespace

int main(int argc, char** argv) {
  bool run_bench = false;
  bool run_vmap_bench = false;
  int64_t batch = 32;
  int repeats = 7;
  bool run_bench_table = false;
  std::vector<int64_t> batches{32, 256};
  std::string device = cuda_device_count() > 0 ? "cuda" : "cpu";
  std::string only;
  std::string models_dir;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    if (arg == "bench") run_bench = true;
    else if (arg == "vmap-bench") run_vmap_bench = true;
    else if (arg == "bench-table") run_bench_table = true;
    else if (arg == "--batches" && k + 1 < argc) batches = batch_list(argv[++k]);
    else if (arg == "--device" && k + 1 < argc) device = argv[++k];
    else if (arg == "--batch" && k + 1 < argc) batch = std::stoll(argv[++k]);
    else if (arg == "--repeats" && k + 1 < argc) repeats = std::stoi(argv[++k]);
    else if (arg == "--suite" && k + 1 < argc) only = argv[++k];
    else if (arg == "--models" && k + 1 < argc) models_dir = argv[++k];
    else if (arg == "--threads" && k + 1 < argc) set_threads(std::stoi(argv[++k]));
    else {
      std::fprintf(stderr, "usage: psg4j_selftest [bench|vmap-bench [--suite mlp|cnn|seq|emb]|bench-table [--batches 32,256]] [--device cpu|cuda[:N]] [--batch B] [--repeats R] [--threads N] [--models DIR]\n");
      return 2;
    }
  }
  torch::Device d(at::kCPU);
  try {
    d = parse_device(device);
  } catch (const Error& e) {
    // One line, as the CLI says it: what is missing and what to do.
    const std::string message = e.what();
    const std::string line = message.substr(0, message.find('\n'));
    std::printf("%s\n", line.c_str());
    return 2;
  }
  if (run_bench_table) {
    bench_table(batches, repeats, d);
    return 0;
  }
  if (run_vmap_bench) {
    vmap_bench(batch, repeats, d, only, models_dir);
    return 0;
  }
  if (run_bench) {
    bench(batch, repeats, d, only, models_dir);
    return 0;
  }
  std::printf("psg4j self-test on %s\n", d.str().c_str());
  checks(d);
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

#include "psg4j/model_variants.h"

#include "psg4j/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <limits>
#include <map>
#include <unordered_map>

namespace psg4j {
namespace {

// The model's tensors replaced, by name: the state every forward gets, and the trainable ones.
class VariantModel final : public Model {
 public:
  VariantModel(const Model& base, NamedTensors state, TrainableParameters parameters, std::string what)
      : base_(base), state_(std::move(state)), parameters_(std::move(parameters)), what_(std::move(what)) {}

  at::Tensor forward(const std::vector<at::Tensor>& inputs) const override { return (*bind_forward())(inputs); }

  at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                const std::vector<at::Tensor>& parameters) const override {
    if (parameters.size() != parameters_.size()) {
      bad_input("functional call of " + describe() + " got " + std::to_string(parameters.size()) +
                " parameters for its " + std::to_string(parameters_.size()) + " trainable ones");
    }
    std::map<std::string, at::Tensor> given;
    for (size_t k = 0; k < parameters_.size(); ++k) {
      given[parameters_[k].name] = parameters[k];
      for (const std::string& alias : parameters_[k].aliases) given[alias] = parameters[k];
    }
    NamedTensors state = state_;
    for (auto& [name, tensor] : state) {
      if (auto found = given.find(name); found != given.end()) tensor = found->second;
    }
    return (*base_.bind_forward_with(state))(inputs);
  }

  TrainableParameters parameters() const override { return parameters_; }
  std::string describe() const override { return base_.describe() + " (" + what_ + ")"; }
  NamedTensors state() const override { return state_; }
  std::unique_ptr<BoundForward> bind_forward() const override { return base_.bind_forward_with(state_); }

 private:
  const Model& base_;
  NamedTensors state_;
  TrainableParameters parameters_;
  std::string what_;
};

// Every name of every trainable parameter must be in the state, or the variant's forward would not
// read the variant's values of it (its gradient would silently be zero).
void require_in_state(const Model& model, const NamedTensors& state, const TrainableParameters& parameters) {
  std::map<std::string, bool> names;
  for (const auto& entry : state) names[entry.first] = true;
  for (const TrainableParameter& p : parameters) {
    if (names.count(p.name) == 0) bad_input("psg4j cannot replace the parameter '" + p.name + "' of " + model.describe());
    for (const std::string& alias : p.aliases) {
      if (names.count(alias) == 0) bad_input("psg4j cannot replace the parameter '" + alias + "' of " + model.describe());
    }
  }
}

// `replace(t)` for every floating tensor of `model`'s state, once per tensor (tied names share
// it), and the trainable parameters as those replacements.
template <typename Replace>
std::shared_ptr<Model> variant_of(const Model& model, const Replace& replace, const std::string& what) {
  const NamedTensors own = model.state();
  if (own.empty()) bad_input("psg4j cannot replace the tensors " + model.describe() + " reads");
  c10::NoGradGuard no_grad;
  std::unordered_map<const c10::TensorImpl*, at::Tensor> replaced;
  auto replacement = [&](const at::Tensor& t) {
    auto [slot, inserted] = replaced.emplace(t.unsafeGetTensorImpl(), at::Tensor());
    if (inserted) slot->second = replace(t);
    return slot->second;
  };
  NamedTensors state;
  for (const auto& [name, tensor] : own) {
    if (tensor.defined() && at::isFloatingType(tensor.scalar_type())) state.emplace_back(name, replacement(tensor));
  }
  TrainableParameters parameters = model.parameters();
  require_in_state(model, state, parameters);
  for (TrainableParameter& p : parameters) p.tensor = replacement(p.tensor).requires_grad_(true);
  return std::make_shared<VariantModel>(model, std::move(state), std::move(parameters), what);
}

}  // namespace

std::shared_ptr<Model> cast_model(const Model& model, at::ScalarType dtype) {
  return variant_of(model, [dtype](const at::Tensor& t) {
    return t.detach().to(dtype, /*non_blocking=*/false, /*copy=*/true).requires_grad_(t.requires_grad());
  }, "in " + precision_name(dtype));
}

Batch cast_batch(const Batch& batch, at::ScalarType dtype) {
  auto cast = [dtype](const std::vector<at::Tensor>& tensors) {
    std::vector<at::Tensor> out;
    for (const at::Tensor& t : tensors) {
      out.push_back(t.defined() && at::isFloatingType(t.scalar_type()) ? t.detach().to(dtype) : t);
    }
    return out;
  };
  Batch out = batch;
  out.inputs = cast(batch.inputs);
  out.targets = cast(batch.targets);
  return out;
}

bool runs_in(const Model& model, const Batch& batch, int64_t sample, at::ScalarType dtype) {
  try {
    c10::NoGradGuard no_grad;
    return (*model.bind_forward())(copies_of(batch.sample_inputs(sample))).scalar_type() == dtype;
  } catch (const std::exception&) {
    return false;  // a model that makes tensors of its own precision
  }
}

std::shared_ptr<Model> perturbed_model(const Model& model, uint64_t seed) {
  const TrainableParameters own = model.parameters();
  TrainableParameters parameters = own;
  c10::NoGradGuard no_grad;
  at::Generator generator = at::detail::createCPUGenerator(seed);
  for (TrainableParameter& p : parameters) {
    const at::Tensor up = at::bernoulli(at::full(p.tensor.sizes(), 0.5, at::kDouble), generator).to(p.tensor.device());
    const double inf = std::numeric_limits<double>::infinity();
    const at::Tensor toward = at::where(up.gt(0.5), inf, -inf).to(p.tensor.scalar_type());
    p.tensor = at::nextafter(p.tensor.detach(), toward).requires_grad_(true);
  }

  // The model's own forward, called with the moved values.
  class Perturbed final : public Model {
   public:
    Perturbed(const Model& base, TrainableParameters parameters) : base_(base), parameters_(std::move(parameters)) {}
    at::Tensor forward(const std::vector<at::Tensor>& inputs) const override {
      std::vector<at::Tensor> values;
      for (const TrainableParameter& p : parameters_) values.push_back(p.tensor);
      return base_.functional_forward(inputs, values);
    }
    at::Tensor functional_forward(const std::vector<at::Tensor>& inputs,
                                  const std::vector<at::Tensor>& parameters) const override {
      return base_.functional_forward(inputs, parameters);
    }
    TrainableParameters parameters() const override { return parameters_; }
    std::string describe() const override { return base_.describe() + " (parameters moved by one ulp)"; }

   private:
    const Model& base_;
    TrainableParameters parameters_;
  };
  return std::make_shared<Perturbed>(model, std::move(parameters));
}

std::string precision_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return "float";
    case at::kDouble: return "double";
    case at::kHalf: return "half";
    case at::kBFloat16: return "bfloat16";
    default: return c10::toString(dtype);
  }
}

double unit_roundoff(at::ScalarType dtype) {
  switch (dtype) {
    case at::kDouble: return std::ldexp(1.0, -53);
    case at::kHalf: return std::ldexp(1.0, -11);
    case at::kBFloat16: return std::ldexp(1.0, -8);
    default: return std::ldexp(1.0, -24);
  }
}

}  // namespace psg4j

#include "psg4j/tensor_io.h"

#include "psg4j/error.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>

namespace psg4j {
namespace {

at::Tensor as_tensor(const c10::IValue& value, const std::string& path, const std::string& where) {
  if (!value.isTensor()) {
    bad_input(path + ": " + where + " is a " + value.tagKind() +
              ", expected a tensor (save tensors, a tuple/list of tensors, or a dict of tensors)");
  }
  return value.toTensor();
}

NamedTensors to_named_tensors(const c10::IValue& value, const std::string& path) {
  NamedTensors out;
  if (value.isTensor()) {
    out.emplace_back("", value.toTensor());
  } else if (value.isTuple() || value.isList()) {
    const auto elements = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
    for (size_t k = 0; k < elements.size(); ++k) {
      out.emplace_back(std::to_string(k), as_tensor(elements[k], path, "element " + std::to_string(k)));
    }
  } else if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString()) bad_input(path + ": dict keys must be parameter names (strings)");
      const std::string name = entry.key().toStringRef();
      out.emplace_back(name, as_tensor(entry.value(), path, "entry '" + name + "'"));
    }
  } else {
    bad_input(path + " holds a " + value.tagKind() +
              ", expected a tensor, a tuple/list of tensors or a dict {name: tensor}");
  }
  return out;
}

}  // namespace

NamedTensors load_tensor_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) bad_input("cannot open " + path + ": check that the file exists and is readable");
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.empty()) bad_input(path + " is empty: write it with Python's torch.save");
  c10::IValue value;
  try {
    value = torch::jit::pickle_load(bytes);
  } catch (const c10::Error& e) {
    bad_input("cannot read " + path + " as a torch.save file (" + e.what_without_backtrace() +
              "): write it with Python's torch.save");
  }
  return to_named_tensors(value, path);
}

}  // namespace psg4j

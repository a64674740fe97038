#include "psg4j/tensor_io.h"

#include "psg4j/error.h"

#include <torch/csrc/jit/serialization/pickle.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace psg4j {
namespace {

at::Tensor as_tensor(const c10::IValue& value, const std::string& path, const std::string& where) {
  if (!value.isTensor()) {
    bad_input(path + ": " + where + " holds a value of type " + value.tagKind() +
              ", not a tensor (save tensors, a tuple/list of tensors, or a dict of tensors)");
  }
  return value.toTensor();
}

TensorFile to_tensor_file(const c10::IValue& value, const std::string& path) {
  TensorFile out;
  if (value.isTensor()) {
    out.entries.emplace_back("", value.toTensor());
  } else if (value.isTuple() || value.isList()) {
    out.container = value.isTuple() ? TensorContainer::Tuple : TensorContainer::List;
    const auto elements = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
    for (size_t k = 0; k < elements.size(); ++k) {
      out.entries.emplace_back(std::to_string(k), as_tensor(elements[k], path, "element " + std::to_string(k)));
    }
  } else if (value.isGenericDict()) {
    out.container = TensorContainer::Dict;
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString()) bad_input(path + ": dict keys must be parameter names (strings)");
      const std::string name = entry.key().toStringRef();
      out.entries.emplace_back(name, as_tensor(entry.value(), path, "entry '" + name + "'"));
    }
  } else {
    bad_input(path + " holds a value of type " + value.tagKind() +
              ", not a tensor, a tuple/list of tensors or a dict {name: tensor}");
  }
  return out;
}

// Why pickle_load refused `path`, for the two files users give by mistake most: a torch.save of
// sparse tensors (LibTorch's unpickler cannot rebuild them) and a TorchScript module.
std::string unreadable(const std::string& path, const std::string& error) {
  if (error.find("_get_layout") != std::string::npos || error.find("_rebuild_sparse") != std::string::npos) {
    return path + " holds a sparse tensor, which psg4j cannot read: save dense tensors (t.to_dense())";
  }
  if (error.find("unknown type __torch__.") != std::string::npos) {
    return path + " holds a TorchScript module (torch.jit.save), not tensors: give it as the model, and "
           "torch.save of the tensors here";
  }
  return "cannot read " + path + " as a torch.save file (" + error + "): write it with Python's torch.save";
}

}  // namespace

TensorFile load_tensor_file(const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    bad_input(path + " is a directory: give the file written by torch.save, not the folder holding it");
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) bad_input("cannot open " + path + ": check that the file exists and is readable");
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.empty()) bad_input(path + " is empty: write it with Python's torch.save");
  c10::IValue value;
  try {
    value = torch::jit::pickle_load(bytes);
  } catch (const c10::Error& e) {
    bad_input(unreadable(path, e.what_without_backtrace()));
  }
  return to_tensor_file(value, path);
}

}  // namespace psg4j

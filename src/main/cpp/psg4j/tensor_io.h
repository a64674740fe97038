// Reading files written by Python's torch.save.
#pragma once

#include "psg4j/model.h"

#include <string>

namespace psg4j {

// What a torch.save file held at its top level (dev.psg4j.engine.TensorContainer mirrors it), so
// that a caller can refuse the wrong one: a candidate must be a dict, an input must not be.
enum class TensorContainer : int32_t { Tensor = 0, Tuple = 1, List = 2, Dict = 3 };

struct TensorFile {
  TensorContainer container = TensorContainer::Tensor;
  // A tensor: one entry named ""; a tuple or list: entries "0", "1", ...; a dict: its keys.
  NamedTensors entries;
};

// Reads a torch.save file holding a tensor, a tuple or list of tensors or a dict {name: tensor}.
// Throws a BadInput Error naming the file otherwise (missing, a directory, empty, not torch.save).
TensorFile load_tensor_file(const std::string& path);

}  // namespace psg4j

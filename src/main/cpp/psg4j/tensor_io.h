// Reading files written by Python's torch.save.
#pragma once

#include "psg4j/model.h"

#include <string>

namespace psg4j {

// A torch.save file holding a tensor (one entry named ""), a tuple or list of tensors (entries
// named "0", "1", ...) or a dict {name: tensor}. Throws a BadInput Error naming the file otherwise.
NamedTensors load_tensor_file(const std::string& path);

}  // namespace psg4j

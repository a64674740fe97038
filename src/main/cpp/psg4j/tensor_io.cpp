#include "psg4j/tensor_io.h"

#include "psg4j/error.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace psg4j {
namespace {

// An open file, closed on every path.
class Descriptor {
 public:
  explicit Descriptor(int fd) : fd_(fd) {}
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  ~Descriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// The zip reader over an open regular file, by offset (pread): no copy of the whole file is held,
// and nothing past the size fstat saw is read, however the file changes meanwhile.
class DescriptorReader final : public caffe2::serialize::ReadAdapterInterface {
 public:
  DescriptorReader(std::shared_ptr<Descriptor> file, size_t size, std::string path)
      : file_(std::move(file)), size_(size), path_(std::move(path)) {}
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* what = "") const override {
    size_t done = 0;
    while (done < n && pos + done < size_) {
      const ssize_t got = ::pread(file_->get(), static_cast<char*>(buf) + done, n - done,
                                  static_cast<off_t>(pos + done));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) bad_input("cannot read " + path_ + " (" + std::strerror(errno) + ")");
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::shared_ptr<Descriptor> file_;
  size_t size_;
  std::string path_;
};

// What is at `path`, for a file that is no regular file.
std::string file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a named pipe (FIFO)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Opens `path` for reading without ever blocking (opening a FIFO with no writer would wait for
// one) and accepts only a regular file: a pipe or a device (/dev/zero) never ends.
std::shared_ptr<Descriptor> open_regular(const std::string& path, size_t* size) {
  auto file = std::make_shared<Descriptor>(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (file->get() < 0) {
    const int error = errno;
    if (error == ELOOP) bad_input(path + " is a symbolic link loop: give the file written by torch.save");
    if (error == ENOENT) bad_input(path + " does not exist: give the file written by torch.save");
    bad_input("cannot open " + path + " (" + std::strerror(error) + "): give a readable file written by torch.save");
  }
  struct stat st {};
  if (::fstat(file->get(), &st) != 0) bad_input("cannot read " + path + " (" + std::strerror(errno) + ")");
  if (S_ISDIR(st.st_mode)) {
    bad_input(path + " is a directory: give the file written by torch.save, not the folder holding it");
  }
  if (!S_ISREG(st.st_mode)) {
    bad_input(path + " is " + file_kind(st.st_mode) + ", not a regular file: psg4j reads only regular files; "
              "give the file written by torch.save");
  }
  *size = static_cast<size_t>(st.st_size);
  return file;
}

// The top-level value of a torch.save archive, as torch::pickle_load reads it, except that a
// tensor record missing from the archive is noted in `missing` instead of failing: a tensor saved
// from the meta device may have none (it holds no data), and the caller says so rather than
// "record not found".
c10::IValue unpickle(const std::shared_ptr<caffe2::serialize::ReadAdapterInterface>& in,
                     std::vector<std::string>* missing) {
  caffe2::serialize::PyTorchStreamReader archive(in);
  auto [pickle, pickle_size] = archive.getRecord("data.pkl");
  size_t consumed = 0;
  auto read = [&, data = static_cast<const char*>(pickle.get())](char* buffer, size_t n) -> size_t {
    n = std::min(n, pickle_size - consumed);
    std::memcpy(buffer, data + consumed, n);
    consumed += n;
    return n;
  };
  auto read_record = [&](const std::string& key) -> at::DataPtr {
    const std::string name = "data/" + key;
    if (!archive.hasRecord(name)) {
      missing->push_back(name);
      return at::DataPtr();
    }
    return std::get<0>(archive.getRecord(name));
  };
  torch::jit::Unpickler unpickler(read, nullptr, nullptr, read_record, std::nullopt);
  unpickler.set_version(archive.version());
  return unpickler.parse_ivalue();
}

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
  size_t size = 0;
  std::shared_ptr<Descriptor> file = open_regular(path, &size);
  if (size == 0) bad_input(path + " is empty: write it with Python's torch.save");
  std::vector<std::string> missing;
  c10::IValue value;
  try {
    value = unpickle(std::make_shared<DescriptorReader>(file, size, path), &missing);
  } catch (const c10::Error& e) {
    bad_input(unreadable(path, e.what_without_backtrace()));
  }
  TensorFile out = to_tensor_file(value, path);
  for (const auto& [name, tensor] : out.entries) {
    if (tensor.is_meta()) {
      bad_input(path + " holds a tensor on the meta device" + (name.empty() ? "" : " ('" + name + "')") +
                ", which has a shape but no data: save real values (a tensor made or loaded on the cpu, "
                "e.g. after module.to_empty(device='cpu') and loading its weights)");
    }
  }
  if (!missing.empty()) {
    bad_input(path + " is incomplete: its tensor data " + missing.front() +
              " is missing from the archive; write it again with Python's torch.save");
  }
  return out;
}

}  // namespace psg4j

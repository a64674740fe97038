// A stand-in for nlohmann/json.hpp, used by run.sh only where no real one is found (torch's Python
// wheel may not ship it, and a GPU machine may have no way to fetch it). ATen/functorch/Interpreter.h
// includes it for the (de)serialization of functorch interpreters, which psg4j never calls: this
// declares what those inline functions name, and throws if any of them is ever run.
#pragma once
#include <initializer_list>
#include <stdexcept>
#include <string>
namespace nlohmann {
struct json {
  json() = default;
  template <typename... A> json(A&&...) {}
  json(std::initializer_list<json>) {}
  template <typename K> json& operator[](const K&) { return *this; }
  template <typename K> const json& operator[](const K&) const { return *this; }
  template <typename V> operator V() const { throw std::logic_error(kWhy); }
  template <typename V> V get() const { throw std::logic_error(kWhy); }
  template <typename K> bool contains(const K&) const { return false; }
  bool is_null() const { return true; }
  std::string dump() const { throw std::logic_error(kWhy); }
  static json parse(const std::string&) { throw std::logic_error(kWhy); }
  static constexpr const char* kWhy = "psg4j's stand-in nlohmann/json.hpp cannot (de)serialize";
};
}  // namespace nlohmann

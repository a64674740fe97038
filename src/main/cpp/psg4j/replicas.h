// Private replicas of a model's structure, leased one caller at a time, so that psg4j can swap
// parameters into a module (functional_call) without another thread, or the caller's own code,
// ever seeing them: the caller's module is never written.
#pragma once

#include <c10/core/impl/LocalDispatchKeySet.h>

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace psg4j {

// Runs `make` as if no functorch transform were active: a replica may be made while an engine's
// vmap/grad levels are pushed (the pool grows inside a call), and its tensors must be plain.
template <typename Make>
auto outside_transforms(const Make& make) {
  c10::impl::ExcludeDispatchKeyGuard plain(c10::DispatchKeySet(
      {c10::DispatchKey::FuncTorchDynamicLayerFrontMode, c10::DispatchKey::FuncTorchDynamicLayerBackMode}));
  return make();
}

template <typename Replica>
class ReplicaPool {
 public:
  explicit ReplicaPool(std::function<Replica()> make) : make_(std::move(make)) {}

  // One replica for the lease's lifetime, returned to the pool when the lease ends. A pool grows
  // to the number of callers that overlap (the reference's worker threads, the user's threads)
  // and no further.
  class Lease {
   public:
    Lease(ReplicaPool* pool, Replica replica) : pool_(pool), replica_(std::move(replica)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_->release(std::move(replica_)); }
    Replica& get() { return replica_; }

   private:
    ReplicaPool* pool_;
    Replica replica_;
  };

  Lease acquire() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        Replica replica = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(replica));
      }
    }
    return Lease(this, make_());  // made outside the lock: cloning a module takes a while
  }

  // A replica of the caller's own, outside the pool (for a localization that keeps it).
  Replica make() const { return make_(); }

  // Makes the first replica now, so that a call seldom pays for one.
  void warm() { release(make_()); }

 private:
  void release(Replica replica) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_.push_back(std::move(replica));
  }

  std::function<Replica()> make_;
  std::mutex mutex_;
  std::vector<Replica> idle_;
};

}  // namespace psg4j

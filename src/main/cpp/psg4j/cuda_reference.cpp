#include "psg4j/cuda_reference.h"

#include "psg4j/call_scope.h"

#include <c10/core/Event.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace psg4j {
namespace {

// More streams than this only queue launches behind each other on one GPU.
constexpr int kMaxStreamWorkers = 16;
constexpr int kDefaultStreamWorkers = 4;

// Records an event of `stream`'s work so far (device-generic: cudaEventRecord on CUDA).
c10::Event recorded_on(const c10::Stream& stream) {
  c10::Event event(stream.device_type());
  event.record(stream);
  return event;
}

}  // namespace

void wait_for(const c10::Stream& stream, const c10::Stream& waiter) {
  if (stream == waiter) return;
  recorded_on(stream).block(waiter);
}

int stream_workers(int requested, int64_t batch_size) {
  const int wanted = requested > 0 ? requested : kDefaultStreamWorkers;
  const int64_t bounded = std::min<int64_t>({static_cast<int64_t>(wanted), kMaxStreamWorkers,
                                             std::max<int64_t>(batch_size, 1)});
  return static_cast<int>(bounded);
}

std::vector<c10::Stream> worker_streams(const at::Device& device, int workers) {
  c10::impl::VirtualGuardImpl impl(device.type());
  std::vector<c10::Stream> streams;
  for (int w = 0; w < std::max(1, workers); ++w) streams.push_back(impl.getStreamFromGlobalPool(device));
  return streams;
}

void run_on_streams(const at::Device& device, int workers, const std::function<void(int worker)>& work) {
  run_on_streams(device, worker_streams(device, workers), work);
}

void run_on_streams(const at::Device& device, const std::vector<c10::Stream>& streams,
                    const std::function<void(int worker)>& work) {
  c10::impl::VirtualGuardImpl impl(device.type());
  const c10::Stream caller = impl.getStream(device);
  const c10::Event inputs_ready = recorded_on(caller);
  const CallerThreadState caller_state;
  std::mutex failure_mutex;
  std::exception_ptr failure;
  std::vector<c10::Event> done;
  done.reserve(streams.size());
  for (size_t w = 0; w < streams.size(); ++w) done.emplace_back(device.type());
  auto on_stream = [&](int w) {
    try {
      c10::StreamGuard stream(streams[w]);  // this thread's current stream (and device) until it ends
      inputs_ready.block(streams[w]);
      try {
        work(w);
      } catch (...) {
        done[w].record(streams[w]);
        throw;
      }
      done[w].record(streams[w]);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < streams.size(); ++w) {
    try {
      threads.emplace_back([&, w] {
        CallerThreadState::Guard same_state(caller_state);
        on_stream(static_cast<int>(w));
      });
    } catch (const std::system_error&) {
      break;  // no more threads to be had: the ones running share the samples
    }
  }
  on_stream(0);
  for (std::thread& t : threads) t.join();
  // A worker that never started recorded nothing: its event blocks nothing (an unrecorded event
  // is complete), which is right, it launched no work.
  for (const c10::Event& event : done) event.block(caller);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace psg4j

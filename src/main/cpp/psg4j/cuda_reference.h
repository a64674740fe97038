// The reference over samples on CUDA: host threads, each launching its samples on a
// CUDA stream of its own, instead of the CPU's single-threaded sample workers (sample_workers.h).
// Written against c10's device-generic stream and event interfaces, so it builds (and runs on
// bytedeco's GPU natives) without CUDA's own headers.
#pragma once

#include <ATen/ATen.h>

#include <functional>

namespace psg4j {

// The number of stream workers `requested` means on a CUDA device for a batch of `batch_size`:
// itself when positive, else a small default (a few streams keep the GPU busy while each host
// thread waits on its own launches; more only add launch contention), never more than the batch.
int stream_workers(int requested, int64_t batch_size);

// Runs work(w) for w in [0, workers) on `workers` host threads (w = 0 on the caller's), each with
// a CUDA stream of its own from c10's pool made current for its thread. Ordering: every worker
// stream first waits for the caller's current stream (the batch and candidates it wrote are
// ready), and the caller's current stream waits for every worker stream before this returns (so
// what the workers wrote is read, and what they read is freed, after it is done, with no host
// synchronization). What a worker allocates it uses on its own stream only. The caller's
// thread-local state (grad mode, dispatch keys, call scope) is every worker's. Rethrows the first exception a
// worker let escape, after all have ended.
void run_on_streams(const at::Device& device, int workers, const std::function<void(int worker)>& work);

// Makes `waiter` wait (on the device, not the host) for the work queued on `stream` so far.
void wait_for(const c10::Stream& stream, const c10::Stream& waiter);

// The stream workers' streams for a run, made up front so that a caller can prepare per-stream
// state (CUDA graphs) before the workers start: run_on_streams with these streams.
std::vector<c10::Stream> worker_streams(const at::Device& device, int workers);
void run_on_streams(const at::Device& device, const std::vector<c10::Stream>& streams,
                    const std::function<void(int worker)>& work);

}  // namespace psg4j

// CUDA graphs for the fixed-shape training step (`resnetc train --speedups cuda-graphs`):
// libtorch's at::cuda::CUDAGraph, which tch does not bind, behind a small C interface.
//
// The recipe is PyTorch's whole-network capture: a few eager steps on a side stream (so
// cuDNN, cuBLAS and the caching allocator have made their workspaces), then one step is
// captured on that side stream and replayed afterwards on the current stream. The
// captured step reads its batch and learning rate from tensors the caller refills before
// each replay. Capture uses cudaStreamCaptureModeThreadLocal: the batch loader's thread
// keeps copying and resizing on its own stream meanwhile, which the global mode forbids.
// The default CUDA generator (dropout, drop-path) registers itself with every capture.
//
// Called from Rust (src/runtime/graph.rs). Built only when libtorch has CUDA and the
// CUDA runtime's headers are found (build.rs).

#include <ATen/cuda/CUDAGraph.h>
#include <c10/core/Event.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <optional>

#include "error.h"

struct ResnetcGraph {
  c10::DeviceIndex device;
  at::cuda::CUDAGraph graph;
  c10::cuda::CUDAStream side;
  // The stream that was current when the side stream was entered.
  std::optional<c10::cuda::CUDAStream> previous;
  bool captured = false;

  explicit ResnetcGraph(c10::DeviceIndex d)
      : device(d), side(c10::cuda::getStreamFromPool(false, d)) {}
};

namespace {

// `to` waits for the work queued on `from` so far.
void wait_for(const c10::cuda::CUDAStream& from, const c10::cuda::CUDAStream& to) {
  c10::Event done(c10::DeviceType::CUDA);
  done.record(from.unwrap());
  done.block(to.unwrap());
}

}  // namespace

// A graph for CUDA device `device`, not yet captured; null and the error on failure.
extern "C" const char* resnetc_graph_new(int device, ResnetcGraph** out) {
  *out = nullptr;
  return resnetc_guarded([&] { *out = new ResnetcGraph(static_cast<c10::DeviceIndex>(device)); });
}

extern "C" void resnetc_graph_free(ResnetcGraph* g) { delete g; }

// Makes the graph's side stream current, after the work queued on the current stream.
extern "C" const char* resnetc_graph_side_enter(ResnetcGraph* g) {
  return resnetc_guarded([&] {
    TORCH_CHECK(!g->previous, "the side stream is already entered");
    c10::cuda::set_device(g->device);
    auto current = c10::cuda::getCurrentCUDAStream(g->device);
    wait_for(current, g->side);
    g->previous = current;
    c10::cuda::setCurrentCUDAStream(g->side);
  });
}

// Makes the earlier stream current again; it waits for the side stream's work.
extern "C" const char* resnetc_graph_side_exit(ResnetcGraph* g) {
  return resnetc_guarded([&] {
    TORCH_CHECK(g->previous, "the side stream was not entered");
    auto previous = *g->previous;
    g->previous.reset();
    wait_for(g->side, previous);
    c10::cuda::setCurrentCUDAStream(previous);
  });
}

// Starts capturing the work queued on the side stream (entered first).
extern "C" const char* resnetc_graph_capture_begin(ResnetcGraph* g) {
  return resnetc_guarded([&] {
    TORCH_CHECK(g->previous, "capture starts on the side stream");
    TORCH_CHECK(!g->captured, "the graph is already captured");
    c10::cuda::device_synchronize();
    g->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  });
}

// Ends the capture and instantiates the graph.
extern "C" const char* resnetc_graph_capture_end(ResnetcGraph* g) {
  return resnetc_guarded([&] {
    g->graph.capture_end();
    g->captured = true;
  });
}

// Runs the captured work once more, on the current stream.
extern "C" const char* resnetc_graph_replay(ResnetcGraph* g) {
  return resnetc_guarded([&] {
    TORCH_CHECK(g->captured, "the graph has not been captured");
    g->graph.replay();
  });
}

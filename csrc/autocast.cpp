// Autocast to bfloat16 (`resnetc train --precision bf16`): libtorch's automatic mixed
// precision for one device type, which tch reaches only for CUDA and only in float16.
// Convolutions and matrix products then run in bfloat16 while the weights, the optimizer
// and the operators autocast keeps in float32 stay in float32.
//
// Called from Rust (src/runtime/autocast.rs) around a training step's forward pass.

#include <ATen/autocast_mode.h>

#include "error.h"

namespace {

at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }

}  // namespace

// Switches bfloat16 autocast on for the CPU (`cuda` = 0) or CUDA; returns null or the error.
extern "C" const char* resnetc_autocast_enter(int cuda) {
  return resnetc_guarded([&] {
    at::autocast::set_autocast_dtype(device_type(cuda), at::kBFloat16);
    at::autocast::set_autocast_enabled(device_type(cuda), true);
    at::autocast::increment_nesting();
  });
}

// Switches it off again; the cache of weights cast to bfloat16 is dropped when the
// outermost region ends, as torch.autocast does.
extern "C" void resnetc_autocast_exit(int cuda) {
  try {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_type(cuda), false);
  } catch (...) {
    // Neither call throws in practice; nothing to report from a destructor.
  }
}

// Whether autocast keeps the bfloat16 copies of weights for the rest of a region. Off while
// a CUDA graph is captured and replayed: a copy cached outside the capture would be read
// from memory the graph does not own.
extern "C" void resnetc_autocast_cache(int enabled) {
  at::autocast::set_autocast_cache_enabled(enabled != 0);
}

//! CUDA graphs (`resnetc train --speedups cuda-graphs`): one training step captured once and
//! replayed for every later batch of the same shape, so the GPU runs the step's few
//! hundred kernels without the host launching each one (`csrc/cuda_graph.cpp`, libtorch's
//! `at::cuda::CUDAGraph`, which tch does not bind).
//!
//! Built only when libtorch has CUDA and the CUDA runtime's headers were found at build
//! time (cfg `resnetc_cuda_graphs`); otherwise [`CudaGraph::new`] says so.

use tch::{Device, TchError};

#[cfg(resnetc_cuda_graphs)]
mod ffi {
    use std::ffi::{c_char, c_int};

    /// The C++ side's graph object.
    #[repr(C)]
    pub struct ResnetcGraph {
        _private: [u8; 0],
    }

    extern "C" {
        pub fn resnetc_graph_new(device: c_int, out: *mut *mut ResnetcGraph) -> *const c_char;
        pub fn resnetc_graph_free(g: *mut ResnetcGraph);
        pub fn resnetc_graph_side_enter(g: *mut ResnetcGraph) -> *const c_char;
        pub fn resnetc_graph_side_exit(g: *mut ResnetcGraph) -> *const c_char;
        pub fn resnetc_graph_capture_begin(g: *mut ResnetcGraph) -> *const c_char;
        pub fn resnetc_graph_capture_end(g: *mut ResnetcGraph) -> *const c_char;
        pub fn resnetc_graph_replay(g: *mut ResnetcGraph) -> *const c_char;
    }

    /// `Err` with the C++ side's message when `err` is not null.
    pub fn check(err: *const c_char) -> Result<(), tch::TchError> {
        if err.is_null() {
            return Ok(());
        }
        // SAFETY: a NUL-terminated string valid until the next call on this thread,
        // copied at once.
        let msg = unsafe { std::ffi::CStr::from_ptr(err) };
        Err(tch::TchError::Torch(msg.to_string_lossy().into_owned()))
    }
}

/// A CUDA graph with its side stream, for one CUDA device.
pub struct CudaGraph {
    #[cfg(resnetc_cuda_graphs)]
    ptr: *mut ffi::ResnetcGraph,
}

impl CudaGraph {
    /// Whether this build can capture CUDA graphs.
    pub const AVAILABLE: bool = cfg!(resnetc_cuda_graphs);

    /// An empty graph for `device`, which must be a CUDA device.
    pub fn new(device: Device) -> Result<CudaGraph, TchError> {
        let Device::Cuda(index) = device else {
            return Err(TchError::Torch(format!(
                "CUDA graphs need a CUDA device, not {device:?}"
            )));
        };
        #[cfg(resnetc_cuda_graphs)]
        {
            let mut ptr = std::ptr::null_mut();
            // SAFETY: `ptr` is written by the call (null on error).
            ffi::check(unsafe { ffi::resnetc_graph_new(index as std::ffi::c_int, &mut ptr) })?;
            Ok(CudaGraph { ptr })
        }
        #[cfg(not(resnetc_cuda_graphs))]
        {
            let _ = index;
            Err(TchError::Torch(
                "this build of resnetc has no CUDA graphs: libtorch without CUDA, or the CUDA \
                 runtime's headers (cuda_runtime.h and crt/host_config.h) were not found when \
                 it was built; run ./scripts/setup.sh (it adds them to the venv) or set \
                 CUDA_HOME, and rebuild, or leave out the cuda-graphs speed-up"
                    .to_owned(),
            ))
        }
    }

    /// Runs `f` with the graph's side stream current (after the work queued so far);
    /// the earlier stream is current again afterwards and waits for the side stream. The
    /// outer `Err` is the stream switch's, the inner result `f`'s.
    pub fn on_side_stream<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, TchError> {
        self.call(Call::SideEnter)?;
        let out = f();
        self.call(Call::SideExit)?;
        Ok(out)
    }

    /// Captures the work `f` queues on the side stream; nothing runs yet
    /// ([`CudaGraph::replay`] runs it). The outer `Err` is the capture's, the inner
    /// result `f`'s; the capture is ended either way.
    pub fn capture<T, E>(
        &mut self,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<Result<T, E>, TchError> {
        let this = &*self;
        this.on_side_stream(|| {
            this.call(Call::CaptureBegin)?;
            let out = f();
            this.call(Call::CaptureEnd)?;
            Ok(out)
        })?
    }

    /// Runs the captured work again, on the current stream.
    pub fn replay(&mut self) -> Result<(), TchError> {
        self.call(Call::Replay)
    }

    #[cfg(resnetc_cuda_graphs)]
    fn call(&self, call: Call) -> Result<(), TchError> {
        let g = self.ptr;
        // SAFETY: `g` is the live object made by `resnetc_graph_new`; each entry point
        // catches its exceptions and checks the graph's state.
        ffi::check(unsafe {
            match call {
                Call::SideEnter => ffi::resnetc_graph_side_enter(g),
                Call::SideExit => ffi::resnetc_graph_side_exit(g),
                Call::CaptureBegin => ffi::resnetc_graph_capture_begin(g),
                Call::CaptureEnd => ffi::resnetc_graph_capture_end(g),
                Call::Replay => ffi::resnetc_graph_replay(g),
            }
        })
    }

    #[cfg(not(resnetc_cuda_graphs))]
    fn call(&self, _call: Call) -> Result<(), TchError> {
        Err(TchError::Torch(
            "this build of resnetc has no CUDA graphs".to_owned(),
        ))
    }
}

#[derive(Clone, Copy)]
enum Call {
    SideEnter,
    SideExit,
    CaptureBegin,
    CaptureEnd,
    Replay,
}

#[cfg(resnetc_cuda_graphs)]
impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: made by `resnetc_graph_new`, freed once.
        unsafe { ffi::resnetc_graph_free(self.ptr) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_the_cpu() {
        let err = CudaGraph::new(Device::Cpu).err().expect("refused");
        assert!(err.to_string().contains("need a CUDA device"), "{err}");
    }

    /// On a GPU: a captured `x += y` does nothing until replayed, then once per replay,
    /// reading `y` as it is at each replay.
    #[test]
    fn captures_and_replays_on_a_gpu() {
        if !tch::Cuda::is_available() || !CudaGraph::AVAILABLE {
            eprintln!("skipped: no CUDA device, or a build without CUDA graphs");
            return;
        }
        let dev = Device::Cuda(0);
        let x = tch::Tensor::zeros([4], (tch::Kind::Float, dev));
        let y = tch::Tensor::ones([4], (tch::Kind::Float, dev));
        let mut g = CudaGraph::new(dev).unwrap();
        g.capture(|| {
            let mut x = x.shallow_clone();
            x.f_add_(&y).map(|_| ())
        })
        .unwrap()
        .unwrap();
        assert_eq!(f64::try_from(x.sum(tch::Kind::Float)).unwrap(), 0.0);
        g.replay().unwrap();
        let mut y2 = y.shallow_clone();
        let _ = y2.fill_(2.0);
        g.replay().unwrap();
        assert_eq!(f64::try_from(x.sum(tch::Kind::Float)).unwrap(), 12.0);
    }
}

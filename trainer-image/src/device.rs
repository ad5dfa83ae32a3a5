//! Choosing where the networks run.

use clap::ValueEnum;
use tch::{Cuda, Device};

/// `--device` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a GPU is visible, else the CPU.
    Auto,
    /// The CPU.
    Cpu,
    /// The first GPU; an error when none is visible.
    Cuda,
}

/// Resolves a choice against the machine.
pub fn resolve(choice: DeviceChoice) -> Result<Device, String> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cuda if Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(
            "--device cuda: no CUDA device is visible to libtorch (check the NVIDIA driver, \
             the container's GPU request and that libtorch_cuda is linked)"
                .into(),
        ),
    }
}

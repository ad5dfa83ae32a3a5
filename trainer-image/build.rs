//! Link fix for libtorch (docs/architecture.md#toolchain).
//!
//! torch-sys links `libtorch_cpu`/`libc10` and, without help, the linker's `--as-needed` drops
//! `libtorch.so` (and with it `libtorch_cuda.so`) because no symbol is referenced directly: the binary
//! then silently never sees a GPU. Forcing `-ltorch` with `--no-as-needed` keeps the CUDA backend
//! registered; the rpath lets the binary find libtorch without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib_dir}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-Wl,--as-needed");
}

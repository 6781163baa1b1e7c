//! Links `wasmcni` as a position-dependent executable: the runtime execs it
//! for every CNI call, and a PIE this size spends a measurable part of each
//! call applying ~35k start-up relocations. The binary also carries the SDK
//! (`scaffold::sdk`): a change there rebuilds it.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    for dir in ["../sdk", "../wit", "cni", "scope", "../Cargo.toml"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

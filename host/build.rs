//! Links `wasmcni` as a position-dependent executable: the runtime execs it
//! for every CNI call, and a PIE this size spends a measurable part of each
//! call applying ~35k start-up relocations.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}

//! Links the berth binary at a fixed address (not position-independent).
//! Every running container has a shim, a berth process of its own; in a
//! position-independent binary the loader rewrites ~0.8 MB of pointer
//! tables at each start, which costs time and becomes private memory in
//! every shim. Linked at a fixed address those tables stay shared pages of
//! the file. Only berth's own binaries are affected, never tests.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}

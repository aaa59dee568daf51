//! Compile tests for the hub macros (see tests/ui.rs).

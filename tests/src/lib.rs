//! Tests live in `tests/tests/`.

/// The auth matrix, run over HTTP against any host.
pub mod auth_matrix;

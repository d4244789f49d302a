//! Tests live in `tests/tests/`.

/// The auth matrix, run over HTTP against any host.
pub mod auth_matrix;

/// Estuary behaviour over HTTP, for any host.
pub mod estuary_scenarios;

/// Host behaviour over HTTP: rotation, large appends, SSE, restarts.
pub mod host_scenarios;

/// The registry stream of create/delete events over HTTP, for any host.
pub mod registry_scenarios;

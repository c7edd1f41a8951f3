//! Connections driven on the pool: milestone 3's accept loop and session driver, with the
//! threads taken from a [`ThreadPool`] instead of spawned per connection.
//!
//! ```text
//!  acceptor (m03) ──accept4──▶ ConnectionJob ──Spawner::execute──▶ pool queue ──▶ worker
//!                                   │ queue full / shutting down: the job is dropped,
//!                                   └──────────────▶ refusal bytes (HTTP 503), close, counted
//! ```
//!
//! The classic limit is visible here: a blocking connection holds its worker for its whole
//! life, so `workers` bounds the connections served at once and a slow client occupies a
//! worker (the `pool_slow_clients` experiment). Hence [`DEFAULT_CONNECTION_WORKERS`] is much
//! larger than the CPU count that suits CPU-bound tasks. Milestone 9's event loop removes the
//! limit.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use m03_thread_per_conn::{
    ConnectionExecutor, ConnectionJob, SessionFactory, ShutdownHandle, StatsHandle, ThreadConfig,
    ThreadReport, ThreadServer,
};

use crate::{
    PoolConfig, PoolSnapshot, QueueDesign, ShutdownMode, ShutdownReport, Spawner, ThreadPool,
};

/// Workers of a connection pool by default: blocking connections hold a worker each.
pub const DEFAULT_CONNECTION_WORKERS: usize = 64;

/// Connections that may wait for a worker before new ones are refused.
pub const DEFAULT_CONNECTION_QUEUE: usize = 1024;

/// Configuration of a [`PoolServer`].
#[derive(Debug, Clone)]
pub struct PoolServerConfig {
    /// The accept side (listen address, backlog, buffers, grace period): milestone 3's.
    pub server: ThreadConfig,
    /// The pool the connections run on.
    pub pool: PoolConfig,
}

impl PoolServerConfig {
    /// Defaults: [`DEFAULT_CONNECTION_WORKERS`] workers, work stealing, a queue of
    /// [`DEFAULT_CONNECTION_QUEUE`] connections.
    pub fn new(listen: SocketAddr) -> Self {
        let mut pool = PoolConfig::with(DEFAULT_CONNECTION_WORKERS, QueueDesign::WorkStealing);
        pool.queue_capacity = DEFAULT_CONNECTION_QUEUE;
        pool.name = "conn-pool".into();
        PoolServerConfig {
            server: ThreadConfig::new(listen),
            pool,
        }
    }
}

/// Hands connection jobs to the pool; a job the pool refuses is dropped, which refuses the
/// connection.
#[derive(Clone)]
struct PoolExecutor {
    spawner: Spawner,
}

impl std::fmt::Debug for PoolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolExecutor").finish_non_exhaustive()
    }
}

impl ConnectionExecutor for PoolExecutor {
    fn execute(&self, job: ConnectionJob) {
        // On `Err` (queue full, shutting down) the closure, and with it the job, is dropped.
        let _ = self.spawner.execute(move || job.run());
    }

    fn name(&self) -> &'static str {
        "pool"
    }
}

/// What [`PoolServer::run`] returns.
#[derive(Debug)]
pub struct PoolServerReport {
    /// The accept side and the connections (milestone 3's report).
    pub server: ThreadReport,
    /// The pool: every task completed, panicked or cancelled.
    pub pool: ShutdownReport,
}

/// Milestone 3's server with its connections on a [`ThreadPool`].
pub struct PoolServer {
    server: ThreadServer,
    pool: ThreadPool,
}

impl std::fmt::Debug for PoolServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolServer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl PoolServer {
    /// Starts the pool and binds the listener.
    pub fn bind(mut config: PoolServerConfig) -> io::Result<PoolServer> {
        let pool = ThreadPool::new(config.pool)?;
        config.server.executor = Some(Arc::new(PoolExecutor {
            spawner: pool.spawner(),
        }));
        let server = ThreadServer::bind(config.server)?;
        Ok(PoolServer { server, pool })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A handle that stops [`run`](Self::run).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.server.shutdown_handle()
    }

    /// Connection statistics (milestone 3's).
    pub fn stats(&self) -> StatsHandle {
        self.server.stats()
    }

    /// A handle on the pool's statistics.
    pub fn pool_stats(&self) -> PoolStatsHandle {
        PoolStatsHandle {
            spawner: self.pool.spawner(),
        }
    }

    /// Accepts until shutdown, serving each connection as one pool task; then waits for the
    /// connections (milestone 3's grace period) and drains the pool.
    pub fn run<F: SessionFactory>(self, factory: Arc<F>) -> io::Result<PoolServerReport> {
        let PoolServer { server, pool } = self;
        let server_report = server.run(factory);
        // Connections still queued after the grace period are cancelled: each dropped job
        // refuses its connection.
        let pool_report = pool.shutdown(ShutdownMode::Cancel);
        Ok(PoolServerReport {
            server: server_report?,
            pool: pool_report,
        })
    }
}

/// Reads the pool's statistics from anywhere (`/stats`, Prometheus).
#[derive(Clone)]
pub struct PoolStatsHandle {
    spawner: Spawner,
}

impl std::fmt::Debug for PoolStatsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolStatsHandle").finish_non_exhaustive()
    }
}

impl PoolStatsHandle {
    /// A snapshot of the pool's counters and histograms.
    pub fn snapshot(&self) -> PoolSnapshot {
        self.spawner.snapshot()
    }

    /// Prometheus text.
    pub fn prometheus(&self) -> String {
        self.spawner.prometheus()
    }
}

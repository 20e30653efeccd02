//! A graph shared between threads: the real-time scheduler and publishers.
//!
//! The graph itself is single-threaded data; [`SharedGraph`] wraps it in a mutex with a
//! condition variable that is signalled whenever work or room appears. Publishers that meet a
//! full blocking mailbox wait on it (with a timeout); the real-time loop sleeps on it until the
//! next timer or new work. One rule keeps it simple: code running inside the graph (operators,
//! subscribers) never takes the lock again; publishes it makes are queued by the caller and run
//! right after the current dispatch.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::graph::Graph;

/// A graph behind a mutex, with a "something changed" signal.
pub struct SharedGraph {
    graph: Mutex<Graph>,
    changed: Condvar,
}

impl SharedGraph {
    /// Shares `graph`.
    pub fn new(graph: Graph) -> SharedGraph {
        SharedGraph { graph: Mutex::new(graph), changed: Condvar::new() }
    }

    /// Locks the graph. The guard is `Send` (parking_lot's `send_guard`), so a binding can take
    /// the lock while it has released the Python GIL.
    pub fn lock(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock()
    }

    /// Locks the graph if nobody holds it.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, Graph>> {
        self.graph.try_lock()
    }

    /// Locks the graph if it is free within `wait`.
    pub fn try_lock_for(&self, wait: std::time::Duration) -> Option<MutexGuard<'_, Graph>> {
        self.graph.try_lock_for(wait)
    }

    /// Wakes every waiter: call after publishing, draining or changing the topology.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Waits (releasing the lock) until notified or `deadline`; returns the guard again.
    pub fn wait_until(&self, guard: &mut MutexGuard<'_, Graph>, deadline: Instant) {
        if deadline > Instant::now() {
            self.changed.wait_until(guard, deadline);
        }
    }

    /// Runs the graph against the wall clock for `duration`: delivers mailboxes, fires timers
    /// and releases guarded work as they come due, sleeping in between. `after_run` is called
    /// with the graph after each scheduler pass (bindings run queued work there). Returns the
    /// steps taken.
    pub fn run_realtime<F: FnMut(&mut Graph)>(&self, duration: Duration, steps_max: u64, mut after_run: F) -> u64 {
        let end = Instant::now() + duration;
        let mut steps = 0;
        let mut graph = self.lock();
        // Bounded by the deadline: each pass either works or sleeps until a change or the end.
        loop {
            let report = graph.run_until_idle(steps_max);
            after_run(&mut graph);
            steps += report.steps;
            if report.steps > 0 {
                self.notify();
            }
            let now = Instant::now();
            if now >= end {
                return steps;
            }
            let wake = graph
                .next_timer_us()
                .map(|due| {
                    let wait_us = (due - graph.now_us()).max(0) as u64;
                    now + Duration::from_micros(wait_us)
                })
                .map_or(end, |t| t.min(end));
            if report.idle {
                self.wait_until(&mut graph, wake);
            }
        }
    }
}

//! Parallelism over rollouts: cached, fork-safe rayon pools and a per-rollout map.
//!
//! Rollouts are independent, so each one is computed by one closure call writing its own
//! slice of the output: results are identical for any thread count.
//!
//! Fork safety: Ray and DataLoader workers `fork` a process that may already have used
//! a pool. The child inherits the pool's bookkeeping but not its threads, so using it
//! would wait forever. Pools are therefore tagged with the process id that built them;
//! a child sees a different id and builds its own (the parent's pools are leaked in the
//! child on purpose: dropping them would signal threads that do not exist there). The
//! registry's lock is held only for map look-ups, never while threads are spawned, so a
//! fork from another thread cannot leave a child waiting on a lock its parent held for
//! long.
//!
//! Bounded: at most `MAX_THREADS` threads per pool and `MAX_POOLS` pools (distinct
//! sizes) at once; the oldest pool beyond that is dropped (its threads exit once no
//! call is using it).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::packed::Packed;

/// Batches with fewer tokens than this run on the calling thread: waking a pool costs
/// more than the work.
const MIN_PARALLEL_TOKENS: usize = 1 << 15;

/// The largest thread count a call may ask for (the bindings reject more).
pub const MAX_THREADS: usize = 256;

/// Pools of distinct sizes kept at once.
const MAX_POOLS: usize = 4;

struct Pools {
    pid: u32,
    by_size: HashMap<usize, Arc<ThreadPool>>,
    order: Vec<usize>, // sizes, oldest first
}

static POOLS: Mutex<Option<Pools>> = Mutex::new(None);

fn lock_pools() -> MutexGuard<'static, Option<Pools>> {
    POOLS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Default thread count: `SAS_CORE_NUM_THREADS` if set to a positive integer, else the
/// number of CPUs this process may use.
pub fn default_threads() -> usize {
    // available_parallelism reads cgroup files (tens of microseconds): ask once. The
    // environment variable is read each time so that it can be changed at run time.
    static CPUS: OnceLock<usize> = OnceLock::new();
    std::env::var("SAS_CORE_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            *CPUS.get_or_init(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(1)
            })
        })
}

/// A pool of `n` threads owned by this process, or `None` if threads cannot be spawned
/// (the caller then runs sequentially, with the same result).
fn pool(n: usize) -> Option<Arc<ThreadPool>> {
    let n = n.min(MAX_THREADS);
    let pid = std::process::id();
    if let Some(p) = cached(pid, n) {
        return Some(p);
    }
    // Spawn the threads with the lock released (see module docs).
    let built = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("sas-core-{i}"))
            .build()
            .ok()?,
    );
    let mut guard = lock_pools();
    let pools = own_pools(&mut guard, pid);
    if let Some(p) = pools.by_size.get(&n) {
        return Some(Arc::clone(p)); // another thread built one meanwhile; ours is dropped
    }
    if pools.order.len() >= MAX_POOLS {
        let oldest = pools.order.remove(0);
        pools.by_size.remove(&oldest);
    }
    pools.order.push(n);
    pools.by_size.insert(n, Arc::clone(&built));
    Some(built)
}

/// This process's registry, replacing one inherited through fork (see module docs).
fn own_pools(guard: &mut Option<Pools>, pid: u32) -> &mut Pools {
    if guard.as_ref().is_some_and(|p| p.pid != pid) {
        if let Some(stale) = guard.take() {
            std::mem::forget(stale);
        }
    }
    guard.get_or_insert_with(|| Pools {
        pid,
        by_size: HashMap::new(),
        order: Vec::new(),
    })
}

fn cached(pid: u32, n: usize) -> Option<Arc<ThreadPool>> {
    let mut guard = lock_pools();
    own_pools(&mut guard, pid).by_size.get(&n).map(Arc::clone)
}

/// Pools currently kept (for tests).
pub fn pools_kept() -> usize {
    let mut guard = lock_pools();
    own_pools(&mut guard, std::process::id()).by_size.len()
}

/// Calls `f(state, b, token_range, out_slice)` for every rollout `b`, where `out_slice`
/// is rollout `b`'s part of `out`, and returns the results in rollout order.
/// `init` builds per-thread scratch state.
pub fn map_rollouts<T, R, S, I, F>(
    packed: &Packed<'_>,
    out: &mut [T],
    threads: usize,
    init: I,
    f: F,
) -> Vec<R>
where
    T: Send,
    R: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, Range<usize>, &mut [T]) -> R + Sync + Send,
{
    debug_assert_eq!(out.len(), packed.n_tokens());
    let mut jobs = Vec::with_capacity(packed.len());
    let mut rest = out;
    for (b, range) in packed.ranges().enumerate() {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        jobs.push((b, range, head));
        rest = tail;
    }
    let parallel = threads > 1 && packed.len() > 1 && packed.n_tokens() >= MIN_PARALLEL_TOKENS;
    if parallel {
        if let Some(pool) = pool(threads) {
            return pool.install(|| {
                jobs.into_par_iter()
                    .map_init(&init, |s, (b, r, o)| f(s, b, r, o))
                    .collect()
            });
        }
    }
    let mut state = init();
    jobs.into_iter()
        .map(|(b, r, o)| f(&mut state, b, r, o))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_result_for_any_thread_count() {
        let n = MIN_PARALLEL_TOKENS * 2 + 7;
        let cu: Vec<i64> = (0..=97).map(|b| (b * n / 97) as i64).collect();
        let packed = Packed::new(&cu).unwrap();
        let run = |threads| {
            let mut out = vec![0usize; n];
            let sums = map_rollouts(
                &packed,
                &mut out,
                threads,
                || (),
                |_, b, r, o| {
                    for (i, x) in o.iter_mut().enumerate() {
                        *x = b * 1_000_000 + r.start + i;
                    }
                    r.len()
                },
            );
            (out, sums)
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(5));
        assert_eq!(one.0[n - 1], 96 * 1_000_000 + n - 1);
        // Many distinct sizes keep at most MAX_POOLS pools; a huge count is capped.
        for threads in 2..12 {
            assert_eq!(one, run(threads));
        }
        assert!(pools_kept() <= MAX_POOLS);
        assert_eq!(one, run(100_000));
    }
}

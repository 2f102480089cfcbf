//! Parallelism over rollouts: cached, fork-safe rayon pools and a per-rollout map.
//!
//! Rollouts are independent, so each one is computed by one closure call writing its own
//! slice of the output: results are identical for any thread count.
//!
//! Fork safety: Ray and DataLoader workers `fork` a process that may already have used
//! a pool. The child inherits the pool's bookkeeping but not its threads, so using it
//! would wait forever. The registry of pools is therefore tagged with the process id
//! that made it; a child sees a different id and makes its own, never touching the
//! parent's registry or its lock (which a thread that does not exist in the child may
//! have held at the fork). The parent's pools are leaked in the child on purpose:
//! dropping them would signal threads that do not exist there. The lock is never held
//! while threads are spawned or a pool is dropped.
//!
//! Bounded: at most `MAX_THREADS` threads per pool and `MAX_POOLS` pools (distinct
//! sizes) at once; the oldest pool beyond that is dropped (its threads exit once no
//! call is using it).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicPtr, Ordering};
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
    by_size: HashMap<usize, Arc<ThreadPool>>,
    order: Vec<usize>, // sizes, oldest first
}

/// One process's pool registry. A forked child never touches its parent's registry:
/// its lock may have been held by a thread that does not exist in the child. It makes
/// its own (the parent's is leaked there on purpose, see the module docs).
struct Registry {
    pid: u32,
    pools: Mutex<Pools>,
}

static REGISTRY: AtomicPtr<Registry> = AtomicPtr::new(std::ptr::null_mut());

fn registry() -> &'static Registry {
    let pid = std::process::id();
    let current = REGISTRY.load(Ordering::Acquire);
    // SAFETY: a non-null pointer is a leaked Box<Registry>, never freed.
    if let Some(r) = unsafe { current.as_ref() } {
        if r.pid == pid {
            return r;
        }
    }
    let fresh = Box::into_raw(Box::new(Registry {
        pid,
        pools: Mutex::new(Pools {
            by_size: HashMap::new(),
            order: Vec::new(),
        }),
    }));
    match REGISTRY.compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: `fresh` was just leaked and is now the registry.
        Ok(_) => unsafe { &*fresh },
        Err(other) => {
            // Another thread of this process installed one first: use it.
            // SAFETY: `fresh` was never shared; `other` is a leaked Box<Registry>.
            drop(unsafe { Box::from_raw(fresh) });
            let r = unsafe { &*other };
            if r.pid == pid {
                r
            } else {
                registry()
            }
        }
    }
}

fn lock_pools() -> MutexGuard<'static, Pools> {
    registry()
        .pools
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The variable that sets the default thread count.
pub const THREADS_ENV: &str = "SAS_CORE_NUM_THREADS";

/// `SAS_CORE_NUM_THREADS` as the pools read it (the one place that parses it): the count
/// it sets, clamped to `MAX_THREADS` (None when unset or not a positive integer), and a
/// note when it is set but not used as written.
///
/// ```
/// use sas_core::parallel::{env_threads, THREADS_ENV};
/// std::env::set_var(THREADS_ENV, "lots");
/// let (n, note) = env_threads();
/// assert_eq!(n, None);
/// assert!(note.unwrap().contains("not a positive integer"));
/// ```
pub fn env_threads() -> (Option<usize>, Option<String>) {
    let Ok(raw) = std::env::var(THREADS_ENV) else {
        return (None, None);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if n > MAX_THREADS => (
            Some(MAX_THREADS),
            Some(format!(
                "{THREADS_ENV}={raw:?} is above {MAX_THREADS}: using {MAX_THREADS}"
            )),
        ),
        Ok(n) if n > 0 => (Some(n), None),
        _ => (
            None,
            Some(format!(
                "{THREADS_ENV}={raw:?} is not a positive integer: using the CPU count"
            )),
        ),
    }
}

/// Default thread count: `SAS_CORE_NUM_THREADS` if set to a positive integer (at most
/// `MAX_THREADS`, the most any pool gets), else the number of CPUs this process may use.
pub fn default_threads() -> usize {
    // available_parallelism reads cgroup files (tens of microseconds): ask once. The
    // environment variable is read each time so that it can be changed at run time.
    static CPUS: OnceLock<usize> = OnceLock::new();
    env_threads().0.unwrap_or_else(|| {
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
    if let Some(p) = lock_pools().by_size.get(&n) {
        return Some(Arc::clone(p));
    }
    // Spawn the threads with the lock released (see module docs).
    let built = Arc::new(
        ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("sas-core-{i}"))
            .build()
            .ok()?,
    );
    let evicted = {
        let mut pools = lock_pools();
        if let Some(p) = pools.by_size.get(&n) {
            return Some(Arc::clone(p)); // another thread built one meanwhile; ours is dropped
        }
        let evicted = if pools.order.len() >= MAX_POOLS {
            let oldest = pools.order.remove(0);
            pools.by_size.remove(&oldest)
        } else {
            None
        };
        pools.order.push(n);
        pools.by_size.insert(n, Arc::clone(&built));
        evicted
    };
    drop(evicted); // outside the lock: ends that pool's threads once no call uses it
    Some(built)
}

/// Pools currently kept (for tests).
pub fn pools_kept() -> usize {
    lock_pools().by_size.len()
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
    let mut outs = Vec::with_capacity(packed.len());
    let mut rest = out;
    for range in packed.ranges() {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(range.len());
        outs.push(head);
        rest = tail;
    }
    map_rollouts_with(packed, outs, threads, init, f)
}

/// [`map_rollouts`] with each rollout's output given by the caller (`outs[b]`, e.g.
/// rollout `b`'s parts of several arrays): calls `f(state, b, token_range, outs[b])`.
pub fn map_rollouts_with<O, R, S, I, F>(
    packed: &Packed<'_>,
    outs: Vec<O>,
    threads: usize,
    init: I,
    f: F,
) -> Vec<R>
where
    O: Send,
    R: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, usize, Range<usize>, O) -> R + Sync + Send,
{
    debug_assert_eq!(outs.len(), packed.len());
    let jobs: Vec<_> = packed
        .ranges()
        .zip(outs)
        .enumerate()
        .map(|(b, (range, o))| (b, range, o))
        .collect();
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

//! Passwords: argon2id hashing, on a bounded pool of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Checks a password against the rules: 8 to 128 characters and not a common password; no
/// composition rules, which only make passwords harder to remember.
pub fn check_new_password(c: &mut crate::validate::Checker, field: &str, password: &str) {
    let len = password.chars().count();
    if !(8..=128).contains(&len) {
        c.fail(field, "must be 8 to 128 characters");
    } else if super::is_common_password(password) {
        c.fail(field, "is one of the most common passwords, which attackers try first: choose another");
    }
}

/// argon2id at OWASP's floor (19 MiB, 2 iterations, 1 lane), spelt out rather than taken from
/// the crate's defaults so that a dependency update cannot weaken stored hashes unnoticed.
#[allow(clippy::expect_used)] // Fixed parameters within argon2's limits; every sign-in test uses them.
pub fn password_hasher() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).expect("fixed argon2 parameters are valid");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

pub fn hash_password(password: &str) -> AppResult<String> {
    use argon2::password_hash::PasswordHasher;
    password_hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing: {e}")))
}

/// The pool password hashing runs on. Each argon2 check holds 19 MiB for its duration, so only
/// `workers` run at once and at most `queue` wait; anything beyond is turned away at once
/// rather than piling up memory and threads.
pub struct HashPool {
    permits: Arc<Semaphore>,
    workers: usize,
    /// Calls running or waiting.
    waiting: AtomicUsize,
    queue: usize,
}

/// Returned when the hashing pool's queue is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl HashPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self { permits: Arc::new(Semaphore::new(workers)), workers, waiting: AtomicUsize::new(0), queue }
    }

    /// One worker per core, and a queue a few times that.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::new(cores, cores * 8)
    }

    /// Runs `f` (a password hash or check) on a blocking thread once a worker is free.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // The count is released by a guard, so a caller that stops waiting (a sign-in whose
        // client hung up drops this future) gives its place back.
        let _place = Place::take(&self.waiting, self.queue + self.workers).ok_or(Busy)?;
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| Busy)?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| Busy)
    }
}

/// One place among the calls running or waiting; given back when dropped.
struct Place<'a>(&'a AtomicUsize);

impl<'a> Place<'a> {
    fn take(count: &'a AtomicUsize, limit: usize) -> Option<Self> {
        let place = Place(count);
        (count.fetch_add(1, Ordering::SeqCst) < limit).then_some(place)
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use super::*;

    #[actix_web::test]
    async fn the_hash_pool_turns_away_what_it_cannot_queue() {
        let pool = Arc::new(HashPool::new(2, 3));
        let gate = Arc::new(std::sync::Barrier::new(3));
        let mut running = Vec::new();
        // Two workers block until released; three more wait in the queue.
        for _ in 0..2 {
            let (pool, gate) = (pool.clone(), gate.clone());
            running.push(tokio::spawn(async move { pool.run(move || gate.wait()).await.map(|_| ()) }));
        }
        for _ in 0..3 {
            let pool = pool.clone();
            running.push(tokio::spawn(async move { pool.run(|| ()).await }));
        }
        while pool.waiting.load(Ordering::SeqCst) < 5 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(|| ()).await, Err(Busy), "the sixth is refused at once");
        gate.wait();
        for task in running {
            assert_eq!(task.await.unwrap(), Ok(()));
        }
        assert_eq!(pool.run(|| 7).await, Ok(7), "room again once the queue drains");
    }

    #[actix_web::test]
    async fn a_call_given_up_while_waiting_gives_its_place_back() {
        let pool = Arc::new(HashPool::new(1, 1));
        let gate = Arc::new(std::sync::Barrier::new(2));
        let busy = {
            let (pool, gate) = (pool.clone(), gate.clone());
            tokio::spawn(async move { pool.run(move || gate.wait()).await.map(|_| ()) })
        };
        while pool.waiting.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // A sign-in whose client hung up: its future is dropped while it waits for the worker.
        let given_up = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| ()).await })
        };
        while pool.waiting.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        given_up.abort();
        assert!(given_up.await.unwrap_err().is_cancelled());
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 1, "the dropped call's place is free again");
        gate.wait();
        assert_eq!(busy.await.unwrap(), Ok(()));
        assert_eq!(pool.run(|| 7).await, Ok(7));
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
    }
}

//! Defences against guessing and flooding: refused common passwords; throttling of sign-ins,
//! of wrong private links and API tokens, and of public reports; the bounded pool that password
//! hashing runs on; and the client's address.
//!
//! The counters live in memory. Several instances each count on their own, so behind a load
//! balancer an attacker gets a few more tries (one allowance per instance); the limits are small
//! enough that this does not matter, and it keeps the database out of every failed request.

mod passwords;
mod secrets;

pub use passwords::{check_new_password, hash_password, password_hasher, Busy, HashPool};
pub use secrets::{hash_secret, new_secret};

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;

/// The 20,000 most common passwords of 8 characters or more, lower-cased (see data/README.md).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().collect());

/// Whether a password is one that attackers try first. Case does not make it safer.
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// Counts events per key in fixed windows: once a key reaches `max` within `window`, it is
/// refused until that window ends.
pub struct Counter {
    max: u32,
    window: Duration,
    cap: usize,
    entries: Mutex<HashMap<String, (Instant, u32)>>,
}

/// How many keys a counter holds before it forgets the expired ones and, if that is not
/// enough, the older half: a flood of distinct keys can neither grow memory without bound nor
/// make each request scan the whole map (after a purge there is room for many inserts).
const COUNTER_CAP: usize = 50_000;

impl Counter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self::with_cap(max, window, COUNTER_CAP)
    }

    fn with_cap(max: u32, window: Duration, cap: usize) -> Self {
        Self { max, window, cap, entries: Mutex::new(HashMap::new()) }
    }

    /// How long `key` stays refused, if it is refused now.
    pub fn refused_for(&self, key: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = entries.get(key)?;
        let elapsed = now.saturating_duration_since(*start);
        (elapsed < self.window && *count >= self.max).then(|| self.window - elapsed)
    }

    pub fn record(&self, key: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.cap && !entries.contains_key(key) {
            let window = self.window;
            entries.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if entries.len() > self.cap / 2 {
                let mut starts: Vec<Instant> = entries.values().map(|(s, _)| *s).collect();
                starts.sort();
                let cut = starts[starts.len() / 2];
                entries.retain(|_, (start, _)| *start > cut);
            }
        }
        let entry = entries.entry(key.to_string()).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Takes back one event of `key`'s current window: an attempt counted before its outcome
    /// was known that turned out to be no failure.
    pub fn forgive(&self, key: &str) {
        if let Some(entry) = self.entries.lock().unwrap_or_else(|e| e.into_inner()).get_mut(key) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }

    pub fn clear(&self, key: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// Failed sign-ins allowed for one account from one address in a window.
pub const PAIR_LIMIT: u32 = 5;
/// Failed sign-ins allowed from one address, whatever the accounts, in a window.
pub const ADDRESS_LIMIT: u32 = 30;
/// Failed sign-ins allowed for one account from browsers it has not signed in from before.
pub const ACCOUNT_LIMIT: u32 = 50;
/// Wrong private links and wrong API tokens allowed from one address in a window.
pub const LINK_LIMIT: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Reports accepted through the public form from one address in `REPORT_WINDOW`: enough for a
/// household or an office sharing an address, too few to flood the moderators' queue.
pub const REPORT_LIMIT: u32 = 10;
pub const REPORT_WINDOW: Duration = Duration::from_secs(60 * 60);

/// The counters behind sign-in and private-link throttling.
///
/// An attacker must not be able to lock a real user out, so no limit is per account alone:
/// the per-account limit applies only to browsers that have never signed in to that account
/// (a browser that has carries a trusted-device cookie), and the tighter limits are per
/// address.
pub struct Limits {
    pair: Counter,
    address: Counter,
    account: Counter,
    /// Wrong secrets: private links and API tokens, both long random values that are only
    /// ever guessed.
    links: Counter,
    reports: Counter,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            pair: Counter::new(PAIR_LIMIT, WINDOW),
            address: Counter::new(ADDRESS_LIMIT, WINDOW),
            account: Counter::new(ACCOUNT_LIMIT, WINDOW),
            links: Counter::new(LINK_LIMIT, WINDOW),
            reports: Counter::new(REPORT_LIMIT, REPORT_WINDOW),
        }
    }
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The key an address is counted under. An IPv6 client usually holds a whole /64 and can
/// change address within it at will, so it is counted per /64.
pub fn address_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl Limits {
    /// Counts a sign-in attempt before its password is checked, so that many sent at once
    /// cannot all slip in under the limit while the checks run; if the attempt is refused,
    /// how long to wait (a refused attempt is not counted). A successful sign-in is taken
    /// back by `sign_in_succeeded`.
    pub fn sign_in_attempt(&self, email: &str, addr: IpAddr, trusted_device: bool) -> Result<(), Duration> {
        let now = Instant::now();
        let account = account_key(email);
        let pair = format!("{account}|{}", address_key(addr));
        let address = address_key(addr);
        let mut waits = vec![self.pair.refused_for(&pair, now), self.address.refused_for(&address, now)];
        if !trusted_device {
            waits.push(self.account.refused_for(&account, now));
        }
        if let Some(wait) = waits.into_iter().flatten().max() {
            return Err(wait);
        }
        self.pair.record(&pair, now);
        self.address.record(&address, now);
        if !trusted_device {
            self.account.record(&account, now);
        }
        Ok(())
    }

    /// Takes back an attempt whose password was never checked (the hashing pool was full).
    pub fn sign_in_not_checked(&self, email: &str, addr: IpAddr, trusted_device: bool) {
        self.pair.forgive(&format!("{}|{}", account_key(email), address_key(addr)));
        self.forgive_address_and_account(email, addr, trusted_device);
    }

    pub fn sign_in_succeeded(&self, email: &str, addr: IpAddr, trusted_device: bool) {
        self.pair.clear(&format!("{}|{}", account_key(email), address_key(addr)));
        self.forgive_address_and_account(email, addr, trusted_device);
    }

    fn forgive_address_and_account(&self, email: &str, addr: IpAddr, trusted_device: bool) {
        self.address.forgive(&address_key(addr));
        if !trusted_device {
            self.account.forgive(&account_key(email));
        }
    }

    /// Whether this address has tried too many wrong private links or API tokens.
    pub fn links_refused_for(&self, addr: IpAddr) -> Option<Duration> {
        self.links.refused_for(&address_key(addr), Instant::now())
    }

    pub fn wrong_link(&self, addr: IpAddr) {
        self.links.record(&address_key(addr), Instant::now());
    }

    /// Whether this address has sent as many reports as it may for now.
    pub fn reports_refused_for(&self, addr: IpAddr) -> Option<Duration> {
        self.reports.refused_for(&address_key(addr), Instant::now())
    }

    pub fn report_accepted(&self, addr: IpAddr) {
        self.reports.record(&address_key(addr), Instant::now());
    }
}

/// The address a request came from. Behind a reverse proxy (REDRESS_TRUST_PROXY) that is the
/// last address in X-Forwarded-For, the one the proxy itself added; earlier entries are
/// whatever the client chose to send and are ignored.
pub fn client_addr(req: &HttpRequest, trust_proxy: bool) -> IpAddr {
    if trust_proxy {
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .last();
        if let Some(addr) = forwarded {
            return addr;
        }
    }
    req.peer_addr().map(|a| a.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_passwords_are_known_whatever_their_case() {
        assert!(is_common_password("password"));
        assert!(is_common_password("PassWord"));
        assert!(is_common_password("12345678"));
        assert!(is_common_password("iloveyou"));
        assert!(!is_common_password("correct horse battery staple"));
        assert!(COMMON_PASSWORDS.len() >= 10_000);
    }

    #[test]
    fn a_counter_refuses_after_max_until_the_window_ends() {
        let c = Counter::new(3, Duration::from_secs(60));
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(c.refused_for("k", t), None);
            c.record("k", t);
        }
        assert!(c.refused_for("k", t + Duration::from_secs(10)).unwrap() <= Duration::from_secs(50));
        assert_eq!(c.refused_for("other", t), None);
        assert_eq!(c.refused_for("k", t + Duration::from_secs(61)), None);
        c.record("k", t + Duration::from_secs(61));
        assert_eq!(c.refused_for("k", t + Duration::from_secs(62)), None, "a new window starts afresh");
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(address_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }

    #[test]
    fn sign_in_attempts_count_before_the_check_and_successes_are_taken_back() {
        let limits = Limits::default();
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        // Attempts still being checked count at once: the sixth is refused though none has
        // failed yet.
        for _ in 0..PAIR_LIMIT {
            assert!(limits.sign_in_attempt("a@x.example", addr, false).is_ok());
        }
        assert!(limits.sign_in_attempt("a@x.example", addr, false).is_err());
        // A success clears the pair and takes its attempt back from the others.
        limits.sign_in_succeeded("a@x.example", addr, false);
        assert!(limits.sign_in_attempt("a@x.example", addr, false).is_ok());
        // An attempt turned away unchecked is taken back entirely.
        for _ in 0..(PAIR_LIMIT - 1) {
            limits.sign_in_attempt("b@x.example", addr, false).unwrap();
            limits.sign_in_not_checked("b@x.example", addr, false);
        }
        assert!(limits.sign_in_attempt("b@x.example", addr, false).is_ok());
    }

    #[test]
    fn a_counter_forgets_keys_under_a_flood() {
        let c = Counter::with_cap(1, Duration::from_secs(60), 100);
        let t = Instant::now();
        for i in 0..1000u64 {
            c.record(&i.to_string(), t + Duration::from_nanos(i));
            assert!(c.entries.lock().unwrap().len() <= 100);
        }
        // The newest keys are the ones kept.
        assert!(c.refused_for("999", t + Duration::from_secs(1)).is_some());
    }
}

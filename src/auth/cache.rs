//! The verified-token cache: after a token has been fully verified once, later requests with
//! the same token skip signature and claim checks.
//!
//! - Keyed by the SHA-256 of the whole token, never by `kid` or claims alone (gateways that
//!   keyed on less were bypassed by tokens sharing those parts).
//! - Bounded in entries and in memory: every entry weighs its approximate size, and at least
//!   `max_bytes / max_entries`, so neither bound can be exceeded (quick_cache evicts with
//!   CLOCK-Pro, an LRU refinement).
//! - An entry is used only while `now < exp` and while the key that verified it is still
//!   published by its issuer; otherwise it is dropped and the token verified again.
//! - Concurrent first uses of one token verify once: the others wait for that result.
//! - It lives inside the [`Authenticator`](super::Authenticator), so a config reload starts
//!   with an empty cache.

use std::sync::Arc;

use aws_lc_rs::digest;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::identity::Principal;

/// SHA-256 of a token.
pub type TokenDigest = [u8; 32];

/// Hashes a token.
pub fn token_digest(raw: &str) -> TokenDigest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, raw.as_bytes()).as_ref());
    out
}

/// A verified token.
#[derive(Debug)]
pub struct CachedToken {
    /// Who it proves.
    pub principal: Principal,
    /// `exp` in seconds since the epoch (`u64::MAX` when the issuer allows tokens without one).
    pub expires_at: u64,
    /// Index of the issuer that verified it.
    pub issuer: usize,
    /// The `kid` of the key that verified it.
    pub kid: Option<Box<str>>,
    weight: u64,
}

impl CachedToken {
    /// A cache entry.
    pub fn new(principal: Principal, expires_at: u64, issuer: usize, kid: Option<&str>) -> Self {
        let refs: usize = principal.ownership_refs.iter().map(|r| r.len() + 24).sum();
        let weight = (160 + refs + principal.user_entity_ref.len() * 2 + principal.ownership_header().len()) as u64;
        Self { principal, expires_at, issuer, kid: kid.map(Into::into), weight }
    }
}

/// Weighs entries by approximate size, with a floor that bounds the entry count.
#[derive(Debug, Clone)]
struct ByWeight {
    floor: u64,
}

impl Weighter<TokenDigest, Arc<CachedToken>> for ByWeight {
    fn weight(&self, _key: &TokenDigest, value: &Arc<CachedToken>) -> u64 {
        value.weight.max(self.floor)
    }
}

/// Limits of the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most entries (default 10,000; 0 disables the cache).
    pub max_entries: usize,
    /// Most memory, approximately (default 16 MiB).
    pub max_bytes: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self { max_entries: 10_000, max_bytes: 16 * 1024 * 1024 }
    }
}

/// The cache itself.
pub struct TokenCache {
    entries: Cache<TokenDigest, Arc<CachedToken>, ByWeight>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("len", &self.entries.len()).finish_non_exhaustive()
    }
}

impl TokenCache {
    /// An empty cache, or `None` when `max_entries` is 0.
    pub fn new(limits: CacheLimits) -> Option<Self> {
        if limits.max_entries == 0 || limits.max_bytes == 0 {
            return None;
        }
        let floor = (limits.max_bytes / limits.max_entries as u64).max(1);
        let entries = Cache::with_weighter(limits.max_entries, limits.max_bytes, ByWeight { floor });
        Some(Self { entries })
    }

    /// The principal of a cached token when `is_current` accepts the entry; otherwise runs
    /// `verify` and caches its success. Concurrent callers for the same token wait for the
    /// first one's verification instead of verifying again.
    pub async fn get_or_verify<E>(
        &self,
        digest: &TokenDigest,
        is_current: impl Fn(&CachedToken) -> bool,
        verify: impl Future<Output = Result<CachedToken, E>>,
    ) -> Result<Principal, E> {
        match self.entries.get_value_or_guard_async(digest).await {
            Ok(entry) if is_current(&entry) => Ok(entry.principal.clone()),
            Ok(_) => {
                // Expired, or its key was withdrawn: verify afresh (which fails for those).
                self.entries.remove(digest);
                verify.await.map(|entry| entry.principal)
            }
            Err(guard) => {
                let entry = Arc::new(verify.await?);
                let principal = entry.principal.clone();
                let _ = guard.insert(entry);
                Ok(principal)
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Approximate memory held.
    pub fn weight(&self) -> u64 {
        self.entries.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(groups: usize) -> Principal {
        let groups = (0..groups).map(|i| format!("group:default/g{i}")).collect();
        Principal::new("user:default/jane".into(), groups, Arc::from("test"))
    }

    #[test]
    fn digests_the_whole_token() {
        assert_ne!(token_digest("a.b.c"), token_digest("a.b.d"));
        assert_eq!(token_digest("a.b.c"), token_digest("a.b.c"));
    }

    #[tokio::test]
    async fn bounds_entries_and_memory() {
        let cache = TokenCache::new(CacheLimits { max_entries: 100, max_bytes: 1 << 20 }).unwrap();
        for i in 0..1000 {
            let digest = token_digest(&format!("token-{i}"));
            let verify = async { Ok::<_, ()>(CachedToken::new(principal(1), u64::MAX, 0, None)) };
            cache.get_or_verify(&digest, |_| true, verify).await.unwrap();
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
        let small = TokenCache::new(CacheLimits { max_entries: 1000, max_bytes: 64 * 1024 }).unwrap();
        for i in 0..1000 {
            let digest = token_digest(&format!("token-{i}"));
            let verify = async { Ok::<_, ()>(CachedToken::new(principal(50), u64::MAX, 0, None)) };
            small.get_or_verify(&digest, |_| true, verify).await.unwrap();
        }
        assert!(small.weight() <= 64 * 1024, "{} bytes", small.weight());
        assert!(small.len() < 1000);
    }

    #[tokio::test]
    async fn stale_entries_are_verified_again_and_concurrent_first_uses_verify_once() {
        let cache = Arc::new(TokenCache::new(CacheLimits::default()).unwrap());
        let digest = token_digest("t");
        let verifications = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, verifications) = (cache.clone(), verifications.clone());
            tasks.push(tokio::spawn(async move {
                let verify = async {
                    verifications.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Ok::<_, ()>(CachedToken::new(principal(0), u64::MAX, 0, None))
                };
                cache.get_or_verify(&digest, |_| true, verify).await.unwrap()
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(verifications.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A stale entry is not served: the verification runs (and here fails).
        let result = cache.get_or_verify(&digest, |_| false, async { Err::<CachedToken, _>("expired") }).await;
        assert_eq!(result.unwrap_err(), "expired");
    }

    #[test]
    fn zero_entries_disables_the_cache() {
        assert!(TokenCache::new(CacheLimits { max_entries: 0, max_bytes: 1 }).is_none());
    }
}

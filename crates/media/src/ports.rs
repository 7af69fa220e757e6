//! RTP ports from a configured range: RTP on even ports, the odd port above each one
//! reserved for its RTCP. A port returns to the pool when its lease is dropped.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Why no port could be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Every port of the range is in use.
    #[error("no free RTP port in the range")]
    Exhausted,
    /// The range holds no even port with room for its RTCP port.
    #[error("invalid RTP port range {0}-{1}")]
    InvalidRange(u16, u16),
}

#[derive(Debug)]
struct Pool {
    first: u16,
    last: u16,
    in_use: BTreeSet<u16>,
    /// Where the next search starts: ports are handed out round-robin, so a port just
    /// freed is not reused at once (late packets of the old call would reach the new one).
    next: u16,
}

/// Hands out even RTP ports of `[first, last]`; cheap to clone (shared pool).
#[derive(Debug, Clone)]
pub struct PortAllocator {
    pool: Arc<Mutex<Pool>>,
}

impl PortAllocator {
    /// A pool over `[first, last]`, both inclusive. An odd `first` starts at the next even
    /// port; the last RTP port is the highest even port whose RTCP port is still in range.
    pub fn new(first: u16, last: u16) -> Result<Self, PortError> {
        let start = first
            .checked_add(first % 2)
            .ok_or(PortError::InvalidRange(first, last))?;
        if start == 0 || start >= last {
            return Err(PortError::InvalidRange(first, last));
        }
        let end = if last % 2 == 1 { last - 1 } else { last - 2 };
        if end < start {
            return Err(PortError::InvalidRange(first, last));
        }
        Ok(Self {
            pool: Arc::new(Mutex::new(Pool {
                first: start,
                last: end,
                in_use: BTreeSet::new(),
                next: start,
            })),
        })
    }

    /// How many RTP ports the range holds.
    pub fn capacity(&self) -> usize {
        let pool = self.lock();
        usize::from((pool.last - pool.first) / 2 + 1)
    }

    /// How many are leased now.
    pub fn in_use(&self) -> usize {
        self.lock().in_use.len()
    }

    /// Leases a free even port.
    pub fn allocate(&self) -> Result<PortLease, PortError> {
        let mut pool = self.lock();
        let count = (pool.last - pool.first) / 2 + 1;
        let mut port = pool.next;
        for _ in 0..count {
            let candidate = port;
            port = if candidate >= pool.last {
                pool.first
            } else {
                candidate + 2
            };
            if pool.in_use.insert(candidate) {
                pool.next = port;
                return Ok(PortLease {
                    port: candidate,
                    pool: Arc::clone(&self.pool),
                });
            }
        }
        Err(PortError::Exhausted)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        // A panic while holding the lock cannot leave the set inconsistent (each step is
        // one insert or remove), so a poisoned lock is used as is.
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One leased RTP port (and the RTCP port above it); returned on drop.
#[derive(Debug)]
pub struct PortLease {
    port: u16,
    pool: Arc<Mutex<Pool>>,
}

impl PortLease {
    /// The RTP port (even).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.in_use.remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_round_robin_until_exhausted_and_returned_on_drop() {
        let Ok(a) = PortAllocator::new(10_001, 10_008) else {
            panic!()
        };
        // 10002, 10004, 10006 (10008 would need 10009 for RTCP).
        assert_eq!(a.capacity(), 3);
        let l1 = a.allocate();
        let l2 = a.allocate();
        let l3 = a.allocate();
        let ports: Vec<u16> = [&l1, &l2, &l3]
            .iter()
            .filter_map(|l| l.as_ref().ok().map(PortLease::port))
            .collect();
        assert_eq!(ports, vec![10_002, 10_004, 10_006]);
        assert_eq!(a.allocate().err(), Some(PortError::Exhausted));
        assert_eq!(a.in_use(), 3);
        drop(l2);
        assert_eq!(a.in_use(), 2);
        assert_eq!(a.allocate().map(|l| l.port()), Ok(10_004));
        // That lease was dropped at once; the search goes on round-robin.
        drop(l1);
        assert_eq!(a.allocate().map(|l| l.port()), Ok(10_002));
        drop(l3);
    }

    #[test]
    fn invalid_ranges() {
        assert!(PortAllocator::new(10_000, 10_000).is_err());
        assert!(PortAllocator::new(10_001, 10_002).is_err());
        assert!(PortAllocator::new(0, 100).is_err());
        assert!(PortAllocator::new(65_535, 65_535).is_err());
        assert_eq!(
            PortAllocator::new(10_000, 10_001).map(|a| a.capacity()),
            Ok(1)
        );
    }
}

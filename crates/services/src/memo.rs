//! A bounded memo of a pure function of a text, for answers the hot paths need again and
//! again (a MID's decoded limits, a destination's validity). Nothing is ever invalidated:
//! the answer depends on the text alone. Past `max` entries the memo starts over, so its
//! memory stays bounded whatever the texts.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) struct Memo<V> {
    max: usize,
    answers: Mutex<HashMap<String, V>>,
}

impl<V: Clone> Memo<V> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            answers: Mutex::default(),
        }
    }

    /// The answer for `key`, computed by `compute` on a miss (outside the lock) and kept
    /// when it is `Ok`.
    pub(crate) fn get_or_try_insert<E>(
        &self,
        key: &str,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(v) = self.lock().get(key) {
            return Ok(v.clone());
        }
        let v = compute()?;
        let mut answers = self.lock();
        if answers.len() >= self.max {
            answers.clear();
        }
        answers.insert(key.to_owned(), v.clone());
        Ok(v)
    }

    /// The answer for `key`, computed by `compute` on a miss.
    pub(crate) fn get_or_insert(&self, key: &str, compute: impl FnOnce() -> V) -> V {
        let Ok(v) = self.get_or_try_insert(key, || Ok::<V, std::convert::Infallible>(compute()));
        v
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, V>> {
        // A map of finished answers cannot be left half-changed by a panic.
        self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn computes_once_per_key_and_keeps_only_successes() {
        let memo = Memo::new(8);
        let calls = Cell::new(0);
        let square = |s: &str| {
            calls.set(calls.get() + 1);
            s.parse::<i64>().map(|n| n * n)
        };
        assert_eq!(memo.get_or_try_insert("3", || square("3")), Ok(9));
        assert_eq!(memo.get_or_try_insert("3", || square("3")), Ok(9));
        assert_eq!(calls.get(), 1);
        assert!(memo.get_or_try_insert("x", || square("x")).is_err());
        assert!(memo.get_or_try_insert("x", || square("x")).is_err());
        assert_eq!(calls.get(), 3, "a failure is not kept");
        assert_eq!(memo.get_or_insert("y", || 7), 7);
        assert_eq!(memo.get_or_insert("y", || 8), 7);
    }

    #[test]
    fn stays_bounded() {
        let memo = Memo::new(4);
        for i in 0..100 {
            memo.get_or_insert(&i.to_string(), || i);
            assert!(memo.len() <= 4);
        }
        assert_eq!(memo.get_or_insert("99", || -1), 99);
    }
}

//! A growable set of profile slots, one bit each: audience memberships and the intermediate
//! results of batch evaluation.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    /// A set able to hold slots below `n` without growing.
    pub fn with_len(n: usize) -> Bitset {
        Bitset {
            words: vec![0; n.div_ceil(64)],
        }
    }

    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        self.words
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Sets or clears `i`; returns whether it changed.
    pub fn set(&mut self, i: u32, on: bool) -> bool {
        let w = i as usize / 64;
        if w >= self.words.len() {
            if !on {
                return false;
            }
            self.words.resize(w + 1, 0);
        }
        let bit = 1u64 << (i % 64);
        let was = self.words[w] & bit != 0;
        if on {
            self.words[w] |= bit;
        } else {
            self.words[w] &= !bit;
        }
        was != on
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The members in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(i as u32 * 64 + b)
            })
        })
    }

    pub fn words(&self) -> &[u64] {
        &self.words
    }

    pub fn words_mut(&mut self) -> &mut Vec<u64> {
        &mut self.words
    }

    pub fn from_words(words: Vec<u64>) -> Bitset {
        Bitset { words }
    }

    /// `self & other`.
    pub fn and(mut self, other: &Bitset) -> Bitset {
        self.words.truncate(other.words.len());
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
        self
    }

    /// `self | other`.
    pub fn or(mut self, other: &Bitset) -> Bitset {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
        self
    }

    /// `universe & !self`.
    pub fn complement_in(&self, universe: &Bitset) -> Bitset {
        let words = universe
            .words
            .iter()
            .enumerate()
            .map(|(i, u)| u & !self.words.get(i).copied().unwrap_or(0))
            .collect();
        Bitset { words }
    }

    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_algebra() {
        let mut a = Bitset::default();
        assert!(a.set(3, true));
        assert!(!a.set(3, true));
        a.set(200, true);
        let mut b = Bitset::with_len(10);
        b.set(3, true);
        b.set(5, true);
        assert_eq!(a.clone().and(&b).iter().collect::<Vec<_>>(), vec![3]);
        assert_eq!(a.clone().or(&b).iter().collect::<Vec<_>>(), vec![3, 5, 200]);
        let mut u = Bitset::default();
        for i in 0..8 {
            u.set(i, true);
        }
        assert_eq!(
            b.complement_in(&u).iter().collect::<Vec<_>>(),
            vec![0, 1, 2, 4, 6, 7]
        );
        assert!(!a.set(1000, false));
        assert_eq!(a.count(), 2);
    }
}

//! `o200k_base`'s vocabulary and byte-pair merging: how many tokens one piece of text becomes,
//! merging the lowest-ranked adjacent pair first (the leftmost among equals), as tiktoken does.
//!
//! The vocabulary is one embedded table of token bytes (built by `build.rs`), an offset per rank
//! and a hash table of ranks: about 3 MB, where tiktoken's maps of owned byte vectors take about
//! 45 MB (bench/README.md).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use hashbrown::{DefaultHashBuilder, HashTable};

type Rank = u32;

/// No pair: the sentinel of a merged-away part or the last one.
const NONE: Rank = Rank::MAX;

/// Pieces up to this many bytes merge by scanning every pair at each step, which beats a heap
/// on the few bytes of a word.
const SCAN_LIMIT: usize = 32;

/// For each rank in order, a length byte and the token's bytes.
static TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k_base.bin"));

/// The vocabulary, indexed both ways.
struct Vocabulary {
    /// Where each rank's bytes start in [`TABLE`]; one more entry marks the end of the last.
    starts: Vec<u32>,
    ranks: HashTable<Rank>,
    hasher: DefaultHashBuilder,
}

static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(Vocabulary::load);

impl Vocabulary {
    fn load() -> Self {
        let mut starts = Vec::with_capacity(200_001);
        let mut at = 0;
        while let Some(&length) = TABLE.get(at) {
            starts.push((at + 1) as u32);
            at += 1 + usize::from(length);
        }
        let count = starts.len();
        // The end of the last token, as if another followed.
        starts.push((at + 1) as u32);
        let mut vocabulary = Vocabulary {
            starts,
            ranks: HashTable::with_capacity(count),
            hasher: DefaultHashBuilder::default(),
        };
        for rank in 0..count as Rank {
            let hash = vocabulary.hasher.hash_one(vocabulary.bytes(rank));
            vocabulary.ranks.insert_unique(hash, rank, |&r| {
                // Rehashing on growth cannot happen: the capacity was reserved.
                vocabulary
                    .hasher
                    .hash_one(token_bytes(&vocabulary.starts, r))
            });
        }
        vocabulary
    }

    fn bytes(&self, rank: Rank) -> &'static [u8] {
        token_bytes(&self.starts, rank)
    }

    fn rank(&self, bytes: &[u8]) -> Option<Rank> {
        let hash = self.hasher.hash_one(bytes);
        self.ranks.find(hash, |&r| self.bytes(r) == bytes).copied()
    }
}

fn token_bytes(starts: &[u32], rank: Rank) -> &'static [u8] {
    let i = rank as usize;
    let start = starts[i] as usize;
    // The next token's length byte sits just before its start.
    let end = starts[i + 1] as usize - 1;
    &TABLE[start..end]
}

/// Builds the vocabulary ahead of the first request.
pub fn warm_up() {
    LazyLock::force(&VOCABULARY);
}

/// How many tokens `piece` encodes to.
pub fn count(piece: &[u8]) -> usize {
    let vocabulary = &*VOCABULARY;
    match piece.len() {
        0 => 0,
        // Every byte is a token of its own.
        1 => 1,
        _ if vocabulary.rank(piece).is_some() => 1,
        n if n <= SCAN_LIMIT => scan_merge(vocabulary, piece),
        _ => heap_merge(vocabulary, piece),
    }
}

/// tiktoken's own merge: find the lowest pair, merge it, repeat. Quadratic, with no allocation.
fn scan_merge(vocabulary: &Vocabulary, piece: &[u8]) -> usize {
    // (start of a part, rank of the pair it starts); a last entry marks the end.
    let mut parts = [(0usize, NONE); SCAN_LIMIT + 1];
    let mut len = piece.len() + 1;
    for (i, part) in parts.iter_mut().enumerate().take(len) {
        part.0 = i;
    }
    let pair_rank = |parts: &[(usize, Rank)], i: usize, len: usize| {
        if i + 2 < len {
            vocabulary
                .rank(&piece[parts[i].0..parts[i + 2].0])
                .unwrap_or(NONE)
        } else {
            NONE
        }
    };
    for i in 0..len - 2 {
        parts[i].1 = pair_rank(&parts, i, len);
    }
    loop {
        let Some((i, _)) = parts[..len - 1]
            .iter()
            .enumerate()
            .filter(|(_, p)| p.1 != NONE)
            .min_by_key(|(i, p)| (p.1, *i))
        else {
            return len - 1;
        };
        parts.copy_within(i + 2..len, i + 1);
        len -= 1;
        parts[i].1 = pair_rank(&parts, i, len);
        if i > 0 {
            parts[i - 1].1 = pair_rank(&parts, i - 1, len);
        }
    }
}

/// The same merge for long pieces, in `n log n`: parts in a linked list, pairs in a min-heap
/// keyed by (rank, start), so the leftmost lowest pair comes first as in the scan. A heap
/// entry whose pair has changed since is skipped when it surfaces.
fn heap_merge(vocabulary: &Vocabulary, piece: &[u8]) -> usize {
    let n = piece.len();
    // `next[i]`: where the part starting at `i` ends; `prev[i]`: where the one before starts.
    let mut next: Vec<usize> = (1..=n).collect();
    let mut prev: Vec<usize> = (0..n).map(|i| i.saturating_sub(1)).collect();
    let mut pair: Vec<Rank> = vec![NONE; n];
    let mut heap = BinaryHeap::with_capacity(n);
    let rank_at = |next: &[usize], i: usize| {
        let end = next[i];
        if end >= n {
            return NONE;
        }
        vocabulary.rank(&piece[i..next[end]]).unwrap_or(NONE)
    };
    for (i, rank) in pair.iter_mut().enumerate().take(n - 1) {
        *rank = rank_at(&next, i);
        if *rank != NONE {
            heap.push(Reverse((*rank, i)));
        }
    }
    let mut parts = n;
    while let Some(Reverse((rank, i))) = heap.pop() {
        if pair[i] != rank {
            continue;
        }
        let gone = next[i];
        next[i] = next[gone];
        pair[gone] = NONE;
        if next[i] < n {
            prev[next[i]] = i;
        }
        parts -= 1;
        pair[i] = rank_at(&next, i);
        if pair[i] != NONE {
            heap.push(Reverse((pair[i], i)));
        }
        if i > 0 {
            let before = prev[i];
            pair[before] = rank_at(&next, before);
            if pair[before] != NONE {
                heap.push(Reverse((pair[before], before)));
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_every_rank() {
        let vocabulary = &*VOCABULARY;
        assert_eq!(vocabulary.starts.len(), 199_998 + 1);
        assert_eq!(vocabulary.bytes(0), b"!");
        for rank in [0, 1, 1000, 199_997] {
            assert_eq!(vocabulary.rank(vocabulary.bytes(rank)), Some(rank));
        }
    }

    #[test]
    fn both_merges_agree() {
        let words = [
            "internationalization",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "Straße東京😀",
        ];
        for word in words {
            let long = word.repeat(3);
            assert_eq!(
                scan_merge(&VOCABULARY, word.as_bytes()),
                heap_merge(&VOCABULARY, word.as_bytes()),
                "{word}"
            );
            assert!(heap_merge(&VOCABULARY, long.as_bytes()) > 1);
        }
    }
}

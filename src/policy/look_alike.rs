//! Which held names a new name looks like, found through an index of the
//! new names rather than by comparing every new name with every held one.
//!
//! Two names within Damerau-Levenshtein distance `k` become the same string
//! once at most `k` characters are deleted from each (a substitution or a
//! transposition costs one deletion on each side, an insertion one on the
//! other). So the new names' deletion variants are hashed into an index, each
//! held name's variants are looked up in it, and only the pairs that share
//! one are compared by [`looks_alike`]. The separator rule is an exact match
//! of the names without separators, hashed the same way. A mirror of a
//! million names and a hundred new ones costs a pass over the held names, not
//! a hundred million comparisons.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

/// Names up to this many bytes are found through their deletion variants (at
/// most 1 + 48 + 1 128 each). Two names only look alike by edits when their
/// lengths differ by two bytes or less, so a longer one is compared with the
/// few names of about its length instead.
const INDEXED_LEN: usize = 48;
/// Deletion variants of new names indexed at once (16 bytes each, 8 MiB): more
/// new names are screened in batches, each a pass over the held names.
const BATCH_VARIANTS: usize = 1 << 19;
/// Pairs of names compared at most in one screen (a few seconds). Pairs are
/// only compared when they share a variant, so real mirrors stay far below; a
/// bundle of names crafted to share variants with many held ones without
/// looking like them is refused rather than left to run for hours.
pub const PAIR_BUDGET: u64 = 20_000_000;

/// The screen would compare more than [`PAIR_BUDGET`] pairs of names.
#[derive(Debug)]
pub struct TooManyPairs;

/// Names this close are typo distance: one edit from four characters on, two
/// from eight; below four nearly every name is one edit from another, so only
/// separators count. A scope is part of the name (`@type/node` vs `@types/node`).
#[must_use]
pub fn looks_alike(a: &str, b: &str) -> bool {
    let limit = edit_limit(a.len().min(b.len()));
    // Separators are the cheapest typo there is: `python-dateutil` vs
    // `pythondateutil`. The length gap bounds the distance from below: a
    // cheap filter before the quadratic one.
    let close_in_length = a.len().abs_diff(b.len()) <= limit;
    (close_in_length && strsim::damerau_levenshtein(a, b) <= limit) || without_separators(a).eq(without_separators(b))
}

/// The edits two names whose shorter is `len` bytes may be apart and look alike.
fn edit_limit(len: usize) -> usize {
    match len {
        0..4 => 0,
        4..8 => 1,
        _ => 2,
    }
}

/// `name`'s characters but `-`, `_` and `.`.
fn without_separators(name: &str) -> impl Iterator<Item = char> + '_ {
    name.chars().filter(|c| !matches!(c, '-' | '_' | '.'))
}

/// For each of `new`, the first name of `held` (in its order) it looks like.
pub fn first_look_alikes<'h>(new: &[&str], held: &'h BTreeSet<String>) -> Result<Vec<Option<&'h str>>, TooManyPairs> {
    first_within(new, held, PAIR_BUDGET)
}

/// [`first_look_alikes`], comparing at most `budget` pairs.
fn first_within<'h>(
    new: &[&str],
    held: &'h BTreeSet<String>,
    budget: u64,
) -> Result<Vec<Option<&'h str>>, TooManyPairs> {
    let mut hash = PolyHash::new();
    let separators = Index::build(new.iter().enumerate().map(|(i, name)| (hash.stripped(name), index(i))).collect());
    let mut long: Vec<(usize, u32)> =
        new.iter().enumerate().filter(|(_, n)| n.len() + 2 > INDEXED_LEN).map(|(i, n)| (n.len(), index(i))).collect();
    long.sort_unstable();
    let mut screen = Screen { new, found: vec![None; new.len()], last_compared: vec![0; new.len()], pairs: 0, budget };
    // One batch at a time, each made just before its pass: at most one
    // batch's index is held, however many new names there are.
    let mut from = 0;
    for pass in 0.. {
        let batch;
        (batch, from) = next_batch(new, from, &mut hash);
        for (serial, name) in held.iter().enumerate() {
            let serial = serial + 1;
            if pass == 0 {
                for i in separators.matches(hash.stripped(name)) {
                    screen.compare(i, name, serial)?;
                }
                screen.compare_long(&long, name, serial)?;
            }
            screen.probe(&batch, &mut hash, name, serial)?;
        }
        if from == new.len() {
            break;
        }
    }
    Ok(screen.found)
}

fn index(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 new names (each is an entry of a bundle)")
}

/// The deletion variants of the indexed names of `new` from `from` on, up
/// to about [`BATCH_VARIANTS`] of them; and where the next batch begins
/// (`new.len()` when this one took the rest).
fn next_batch(new: &[&str], from: usize, hash: &mut PolyHash) -> (Index, usize) {
    let mut keys = Vec::new();
    for (i, name) in new.iter().enumerate().skip(from) {
        if keys.len() >= BATCH_VARIANTS {
            return (Index::build(keys), i);
        }
        if let Some(n) = indexed(name).then(|| hash.load(name)) {
            hash.variants(n, edit_limit(name.len()), |key| {
                keys.push((key, index(i)));
                Ok(())
            })
            .unwrap_or_else(|TooManyPairs| unreachable!("pushing a key never fails"));
        }
    }
    (Index::build(keys), new.len())
}

/// Whether `name` can look like another by edits and is short enough to be
/// found through its deletion variants.
fn indexed(name: &str) -> bool {
    edit_limit(name.len()) > 0 && name.len() <= INDEXED_LEN
}

/// What the screen has found so far and what it cost.
struct Screen<'n, 'h> {
    new: &'n [&'n str],
    found: Vec<Option<&'h str>>,
    /// The held name (by its place, from 1) each new name was last compared
    /// with: a pair sharing many variants is compared once.
    last_compared: Vec<usize>,
    pairs: u64,
    budget: u64,
}

impl<'h> Screen<'_, 'h> {
    fn compare(&mut self, i: u32, held: &'h str, serial: usize) -> Result<(), TooManyPairs> {
        let i = i as usize;
        if self.found[i].is_some() || self.last_compared[i] == serial {
            return Ok(());
        }
        self.last_compared[i] = serial;
        self.pairs += 1;
        if self.pairs > self.budget {
            return Err(TooManyPairs);
        }
        if self.new[i] != held && looks_alike(self.new[i], held) {
            self.found[i] = Some(held);
        }
        Ok(())
    }

    /// `held` against the new names its deletion variants share.
    fn probe(&mut self, batch: &Index, hash: &mut PolyHash, held: &'h str, serial: usize) -> Result<(), TooManyPairs> {
        if batch.is_empty() || !indexed(held) {
            return Ok(());
        }
        let n = hash.load(held);
        hash.variants(n, edit_limit(held.len()), |key| {
            batch.matches(key).try_for_each(|i| self.compare(i, held, serial))
        })
    }

    /// `held` against the new names within two bytes of its length when
    /// either of the pair is too long to be indexed.
    fn compare_long(&mut self, long: &[(usize, u32)], held: &'h str, serial: usize) -> Result<(), TooManyPairs> {
        let len = held.len();
        if len + 2 <= INDEXED_LEN {
            return Ok(());
        }
        let from = long.partition_point(|(l, _)| *l + 2 < len);
        for &(new_len, i) in long[from..].iter().take_while(|(l, _)| *l <= len + 2) {
            if new_len > INDEXED_LEN || len > INDEXED_LEN {
                self.compare(i, held, serial)?;
            }
        }
        Ok(())
    }
}

/// Keys of new names, sorted, behind a bit filter so that the held names'
/// variants that match nothing (nearly all) cost one memory read.
struct Index {
    keys: Vec<(u64, u32)>,
    filter: Vec<u64>,
    mask: u64,
}

impl Index {
    fn build(mut keys: Vec<(u64, u32)>) -> Index {
        keys.sort_unstable();
        keys.dedup();
        let bits = (keys.len() * 8).next_power_of_two().max(64);
        let mut filter = vec![0u64; bits / 64];
        let mask = bits as u64 - 1;
        for (key, _) in &keys {
            let bit = key & mask;
            filter[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        Index { keys, filter, mask }
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The new names with `key` among their variants.
    fn matches(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let bit = key & self.mask;
        let maybe = self.filter[(bit / 64) as usize] & (1 << (bit % 64)) != 0;
        let from = if maybe { self.keys.partition_point(|(k, _)| *k < key) } else { self.keys.len() };
        self.keys[from..].iter().take_while(move |(k, _)| *k == key).map(|(_, i)| *i)
    }
}

/// Polynomial hashing modulo the prime 2^61 - 1 with a base drawn at random
/// for each run, so that names cannot be crafted to collide (a collision
/// would only cost a comparison, never a wrong answer). Prefix hashes make
/// the hash of a name with one or two characters left out a constant-time sum.
struct PolyHash {
    base: u64,
    powers: Vec<u64>,
    prefix: Vec<u64>,
}

const MODULUS: u64 = (1 << 61) - 1;

impl PolyHash {
    fn new() -> PolyHash {
        let base = std::collections::hash_map::RandomState::new().hash_one(0u8) % (MODULUS - 257) + 257;
        PolyHash { base, powers: vec![1], prefix: Vec::new() }
    }

    /// Prefix hashes of `name`'s characters; its length in characters.
    fn load(&mut self, name: &str) -> usize {
        self.prefix.clear();
        self.prefix.push(0);
        for c in name.chars() {
            let last = self.prefix[self.prefix.len() - 1];
            self.prefix.push(add(mul(last, self.base), u64::from(c) + 1));
        }
        let n = self.prefix.len() - 1;
        while self.powers.len() <= n {
            let last = self.powers[self.powers.len() - 1];
            self.powers.push(mul(last, self.base));
        }
        n
    }

    /// The hash of the loaded name's characters `from..to`.
    fn range(&self, from: usize, to: usize) -> u64 {
        sub(self.prefix[to], mul(self.prefix[from], self.powers[to - from]))
    }

    /// The hash of a string of hash `left` followed by one of `right_len` characters and hash `right`.
    fn join(&self, left: u64, right: u64, right_len: usize) -> u64 {
        add(mul(left, self.powers[right_len]), right)
    }

    /// The hashes of the loaded name (of `n` characters) with up to
    /// `deletions` (at most 2) characters left out.
    fn variants(
        &self,
        n: usize,
        deletions: usize,
        mut each: impl FnMut(u64) -> Result<(), TooManyPairs>,
    ) -> Result<(), TooManyPairs> {
        each(self.range(0, n))?;
        for i in (0..n).filter(|_| deletions >= 1) {
            let before = self.range(0, i);
            each(self.join(before, self.range(i + 1, n), n - i - 1))?;
            for j in (i + 1..n).filter(|_| deletions >= 2) {
                let between = self.join(before, self.range(i + 1, j), j - i - 1);
                each(self.join(between, self.range(j + 1, n), n - j - 1))?;
            }
        }
        Ok(())
    }

    /// The hash of `name` without its separators.
    fn stripped(&self, name: &str) -> u64 {
        without_separators(name).fold(0, |h, c| add(mul(h, self.base), u64::from(c) + 1))
    }
}

fn mul(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    #[allow(clippy::cast_possible_truncation)] // both halves are below 2^61 by the mask and the shift
    let (low, high) = ((product as u64) & MODULUS, (product >> 61) as u64);
    add(low, high)
}

fn add(a: u64, b: u64) -> u64 {
    let sum = a + b;
    if sum >= MODULUS { sum - MODULUS } else { sum }
}

fn sub(a: u64, b: u64) -> u64 {
    if a >= b { a - b } else { a + MODULUS - b }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn look_alikes() {
        assert!(looks_alike("reqeusts", "requests"));
        assert!(looks_alike("requestss", "requests"));
        assert!(looks_alike("@type/node", "@types/node"));
        assert!(looks_alike("pythondateutil", "python-dateutil"));
        assert!(looks_alike("lodahs", "lodash"));
        assert!(!looks_alike("react", "preact-render"));
        assert!(!looks_alike("six", "sax"));
        // Short names are only one edit apart when genuinely close.
        assert!(!looks_alike("vue", "vite"));
    }

    /// The first held name each new one looks like, by comparing every pair.
    fn naive<'h>(new: &[&str], held: &'h BTreeSet<String>) -> Vec<Option<&'h str>> {
        let first = |name: &str| held.iter().map(String::as_str).find(|h| *h != name && looks_alike(name, h));
        new.iter().map(|name| first(name)).collect()
    }

    #[test]
    fn finds_what_comparing_every_pair_finds() {
        let held: BTreeSet<String> =
            ["requests", "python-dateutil", "lodash", "six", "vue", "numpy", "a".repeat(60).as_str(), "ab"]
                .into_iter()
                .map(str::to_owned)
                .collect();
        let long_typo = format!("{}b", "a".repeat(59));
        let new = ["reqeusts", "pythondateutil", "lodahs", "sax", "vite", "nunpy", "zzzzzz", &long_typo, "a-b"];
        let found = first_look_alikes(&new, &held).unwrap();
        assert_eq!(found, naive(&new, &held));
        assert_eq!(found[0], Some("requests"));
        assert_eq!(found[7], Some(held.iter().find(|h| h.len() == 60).unwrap().as_str()));
        assert_eq!(found[8], Some("ab"));
        assert_eq!(found[6], None);
    }

    #[test]
    fn new_names_beyond_one_batch_are_all_screened() {
        let held: BTreeSet<String> = (0..300).map(|i| format!("package-number-{i:04}-x")).collect();
        // Each 21-byte name has 1 + 21 + 210 variants: 3 000 of them need several batches of 2^19.
        let new: Vec<String> = (0..3000).map(|i| format!("package-numbr-{:04}-x", i % 400)).collect();
        let new: Vec<&str> = new.iter().map(String::as_str).collect();
        assert_eq!(first_look_alikes(&new, &held).unwrap(), naive(&new, &held));
    }

    #[test]
    fn comparisons_beyond_the_budget_are_refused() {
        let held: BTreeSet<String> = (0..50).map(|i| format!("name-{i:02}")).collect();
        let new: Vec<String> = (0..50).map(|i| format!("nme-{i:02}x")).collect();
        let new: Vec<&str> = new.iter().map(String::as_str).collect();
        let needed = {
            let mut pairs = 0;
            while first_within(&new, &held, pairs).is_err() {
                pairs += 1;
            }
            pairs
        };
        assert!(needed > 1, "the screen compared these names at all");
        assert_eq!(first_within(&new, &held, needed).unwrap(), naive(&new, &held));
        assert!(first_within(&new, &held, needed - 1).is_err());
    }

    #[test]
    #[ignore = "a measurement, not a check: cargo test --release --lib -- --ignored --nocapture look_alike"]
    fn measure() {
        for (new_count, held_count) in [(100, 100_000), (1000, 400_000), (100_000, 100_000)] {
            // Names of 6 to 15 letters, as registries' names mostly are.
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let mut random_name = |_| {
                let mut next = || {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state
                };
                let len = 6 + next() % 10;
                (0..len).map(|_| char::from(b'a' + u8::try_from(next() % 26).unwrap())).collect::<String>()
            };
            let held: BTreeSet<String> = (0..held_count).map(&mut random_name).collect();
            let new: Vec<String> = (0..new_count).map(&mut random_name).collect();
            let new: Vec<&str> = new.iter().map(String::as_str).collect();
            let start = std::time::Instant::now();
            let found = first_look_alikes(&new, &held).unwrap();
            let indexed = start.elapsed();
            let start = std::time::Instant::now();
            let sample = 100.min(new_count);
            let naive_found = naive(&new[..sample], &held);
            let per_new = start.elapsed() / u32::try_from(sample).unwrap();
            assert_eq!(&found[..sample], &naive_found[..]);
            println!(
                "{new_count} new x {held_count} held: index {indexed:.2?}, every pair {:.2?} (from {sample})",
                per_new * u32::try_from(new_count).unwrap()
            );
        }
    }

    /// Names from a small alphabet with separators and a non-ASCII letter, so
    /// that pairs within one or two edits are common.
    fn name() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!['a', 'b', 'c', '-', '_', '.', 'é']), 0..12)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #[test]
        fn index_agrees_with_every_pair(held in prop::collection::btree_set(name(), 0..40), new in prop::collection::vec(name(), 0..20)) {
            let new: Vec<&str> = new.iter().map(String::as_str).collect();
            prop_assert_eq!(first_look_alikes(&new, &held).unwrap(), naive(&new, &held));
        }

        #[test]
        fn long_names_agree_with_every_pair(
            held in prop::collection::btree_set(name(), 0..20),
            new in prop::collection::vec(name(), 0..10),
            stem in 44usize..52,
        ) {
            // Lengths around INDEXED_LEN, where pairs cross from the index to direct comparison.
            let pad = |n: &String| format!("{}{n}", "x".repeat(stem));
            let held: BTreeSet<String> = held.iter().map(pad).collect();
            let new: Vec<String> = new.iter().map(pad).collect();
            let new: Vec<&str> = new.iter().map(String::as_str).collect();
            prop_assert_eq!(first_look_alikes(&new, &held).unwrap(), naive(&new, &held));
        }
    }
}

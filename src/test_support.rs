//! Shared fixtures of the unit tests, and a small deterministic generator for the property tests:
//! the same seed, the same cases, so a failure reproduces.

use crate::mesos::layout::{IdVariables, RunLayout};

/// A run under the default work_dir, with an executor ID in Marathon's dotted style.
pub fn sample_run() -> RunLayout {
    RunLayout::from_sandbox(
        "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".as_ref(),
        &IdVariables::default(),
    )
    .unwrap()
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// xorshift64*.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

//! The compact trace: one line per event, and a hash of all lines that proves two runs
//! identical without storing them.

use std::fmt::{self, Write as _};

/// How much of the trace a run keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceMode {
    /// Nothing: the fastest, for sweeps.
    Off,
    /// Only the hash of the lines.
    Hash,
    /// Every line, and the hash.
    Full,
}

/// The trace of one run.
#[derive(Debug)]
pub struct Trace {
    mode: TraceMode,
    lines: Vec<String>,
    buffer: String,
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Trace {
    /// An empty trace.
    pub fn new(mode: TraceMode) -> Trace {
        Trace {
            mode,
            lines: Vec::new(),
            buffer: String::new(),
            hash: FNV_OFFSET,
        }
    }

    /// Whether lines are recorded at all (callers skip formatting otherwise).
    pub fn enabled(&self) -> bool {
        self.mode != TraceMode::Off
    }

    /// Records one line at virtual time `now`.
    pub fn record(&mut self, now: u64, line: fmt::Arguments<'_>) {
        if !self.enabled() {
            return;
        }
        self.buffer.clear();
        // Writing to a String cannot fail.
        let _ = write!(
            self.buffer,
            "{:>6}.{:06} {}",
            now / 1_000_000,
            now % 1_000_000,
            line
        );
        // FNV-1a: stable across platforms and Rust versions, unlike the std hasher.
        for byte in self.buffer.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
        if self.mode == TraceMode::Full {
            self.lines.push(self.buffer.clone());
        }
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The lines, when kept.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }
}

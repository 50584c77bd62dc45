//! Option types shared by the subcommands, their parsers and their canonical spelling
//! (which the replay command line prints, and which parses back to the same value).

use std::fmt;

use clap::Args;
use raft_sim::faults::{MILLISECOND, SECOND, format_duration};
use raft_sim::{FaultPlan, FaultProfile, SimulationOptions};

const MICROSECOND: u64 = 1_000;
const MINUTE: u64 = 60 * SECOND;

/// A length of (virtual) time, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Duration(pub(crate) u64);

impl fmt::Display for Duration {
    /// The shortest exact spelling in the largest unit: `20s`, `1500ms`, `250us`, `7ns`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&format_duration(self.0))
    }
}

/// Splits `text` into its number and unit, e.g. `1.5ms` into `1.5` and `ms`.
fn split_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|character: char| !(character.is_ascii_digit() || character == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// `number` (digits, optionally with a fraction) times `unit` nanoseconds, exactly.
fn scaled(number: &str, unit: u64) -> Option<u64> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut total = whole.checked_mul(u128::from(unit))?;
    if !fraction.is_empty() {
        let digits = u32::try_from(fraction.len()).ok()?;
        let denominator = 10u128.checked_pow(digits)?;
        let numerator: u128 = fraction.parse().ok()?;
        let part = numerator.checked_mul(u128::from(unit))?;
        if !part.is_multiple_of(denominator) {
            // Finer than a nanosecond.
            return None;
        }
        total = total.checked_add(part / denominator)?;
    }
    u64::try_from(total).ok()
}

fn unit_nanos(unit: &str) -> Option<u64> {
    match unit {
        "" | "s" => Some(SECOND),
        "ns" => Some(1),
        "us" | "µs" => Some(MICROSECOND),
        "ms" => Some(MILLISECOND),
        "m" | "min" => Some(MINUTE),
        _ => None,
    }
}

/// Parses `20s`, `500ms`, `1m`, `250us`, `1.5s`, or plain seconds (`20`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let (number, unit) = split_unit(trimmed);
    unit_nanos(unit)
        .and_then(|unit| scaled(number, unit))
        .map(Duration)
        .ok_or_else(|| {
            format!("bad duration '{text}' (expected e.g. 20s, 500ms, 1m, or plain seconds)")
        })
}

/// The seeds of a sweep: `start..end`, end excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SeedRange {
    pub(crate) start: u64,
    pub(crate) end: u64,
}

impl SeedRange {
    pub(crate) fn len(self) -> u64 {
        self.end - self.start
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}..{}", self.start, self.end)
    }
}

fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "bad seed '{text}' (expected a number from 0 to {})",
            u64::MAX
        )
    })
}

/// Parses `A..B` (B excluded), `A..=B`, or a single seed `N`.
pub(crate) fn parse_seed_range(text: &str) -> Result<SeedRange, String> {
    let range = if let Some((start, end)) = text.split_once("..=") {
        let (start, end) = (parse_seed(start)?, parse_seed(end)?);
        if end < start {
            return Err(format!("seed range {text} is reversed"));
        }
        let end = end
            .checked_add(1)
            .ok_or_else(|| format!("seed range {text} ends past the largest seed"))?;
        SeedRange { start, end }
    } else if let Some((start, end)) = text.split_once("..") {
        let (start, end) = (parse_seed(start)?, parse_seed(end)?);
        if end < start {
            return Err(format!("seed range {text} is reversed"));
        }
        if end == start {
            return Err(format!(
                "seed range {text} is empty (the end is excluded: try {start}..{})",
                start.saturating_add(1)
            ));
        }
        SeedRange { start, end }
    } else {
        let seed = parse_seed(text)?;
        let end = seed
            .checked_add(1)
            .ok_or_else(|| format!("seed {seed} is too large for a sweep (use replay)"))?;
        SeedRange { start: seed, end }
    };
    Ok(range)
}

/// Parses a fault profile by name; the error names every profile.
pub(crate) fn parse_profile(text: &str) -> Result<FaultProfile, String> {
    text.trim().parse()
}

/// An election timeout range in ticks, `min..max` with `max` excluded (as `raft-core`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TickRange(pub(crate) u32, pub(crate) u32);

impl fmt::Display for TickRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}..{}", self.0, self.1)
    }
}

pub(crate) fn parse_tick_range(text: &str) -> Result<TickRange, String> {
    let bad = || format!("bad tick range '{text}' (expected MIN..MAX, e.g. 15..30)");
    let (minimum, maximum) = text.split_once("..").ok_or_else(bad)?;
    let minimum = minimum.trim().parse().map_err(|_| bad())?;
    let maximum = maximum.trim().parse().map_err(|_| bad())?;
    Ok(TickRange(minimum, maximum))
}

/// An election timeout range in whole milliseconds, both ends included (as the paper).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeoutRange(pub(crate) u32, pub(crate) u32);

impl fmt::Display for TimeoutRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}..{}ms", self.0, self.1)
    }
}

fn whole_milliseconds(text: &str, default_unit: &str) -> Option<u32> {
    let (number, unit) = split_unit(text.trim());
    let unit = if unit.is_empty() { default_unit } else { unit };
    let nanos = scaled(number, unit_nanos(unit)?)?;
    if !nanos.is_multiple_of(MILLISECOND) {
        return None;
    }
    u32::try_from(nanos / MILLISECOND).ok()
}

/// Parses `150..300ms` (both ends included), `150ms..0.3s`, `150-300ms`, or `150ms`
/// (that is, 150..150ms). A number without a unit is in milliseconds.
pub(crate) fn parse_timeout_range(text: &str) -> Result<TimeoutRange, String> {
    let bad = || {
        format!(
            "bad timeout range '{text}' (expected whole milliseconds like 150..300ms, 150-300ms or 150ms)"
        )
    };
    let trimmed = text.trim();
    let (low, high) = trimmed
        .split_once("..")
        .or_else(|| trimmed.split_once('-'))
        .unwrap_or((trimmed, trimmed));
    // A unit written only after the upper end applies to both ends.
    let (_, high_unit) = split_unit(high.trim());
    let high_unit = if high_unit.is_empty() {
        "ms"
    } else {
        high_unit
    };
    let minimum = whole_milliseconds(low, high_unit).ok_or_else(bad)?;
    let maximum = whole_milliseconds(high, "ms").ok_or_else(bad)?;
    if maximum < minimum {
        return Err(format!("timeout range '{text}' is reversed"));
    }
    if minimum < 2 {
        return Err(format!(
            "timeout range '{text}': the minimum must be at least 2ms (above a 1ms heartbeat)"
        ));
    }
    Ok(TimeoutRange(minimum, maximum))
}

/// The settings of a simulated run, shared by `run` and `replay`.
#[derive(Args, Clone, Debug)]
pub(crate) struct SimulationArgs {
    /// Cluster size, 1 to 15 nodes.
    #[arg(long, value_name = "N", default_value_t = SimulationOptions::default().nodes)]
    pub(crate) nodes: u64,

    /// Fault profile: none, net, crash, disk, clock, pause or all.
    #[arg(
        long,
        value_name = "PROFILE",
        value_parser = parse_profile,
        default_value_t = SimulationOptions::default().faults
    )]
    pub(crate) faults: FaultProfile,

    /// Length of the fault phase in virtual time (20s, 500ms, 1m, or plain seconds).
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value_t = Duration(SimulationOptions::default().duration_nanos)
    )]
    pub(crate) duration: Duration,

    /// After every fault heals, how long the cluster has to serve every client again.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value_t = Duration(SimulationOptions::default().liveness_bound_nanos)
    )]
    pub(crate) liveness_bound: Duration,

    /// Concurrent clients, each with one operation at a time.
    #[arg(long, value_name = "N", default_value_t = SimulationOptions::default().clients)]
    pub(crate) clients: u64,

    /// Keys the workload touches.
    #[arg(long, value_name = "N", default_value_t = SimulationOptions::default().keys)]
    pub(crate) keys: u64,

    /// Nominal tick length; each node's clock drifts from it.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value_t = Duration(SimulationOptions::default().tick_nanos)
    )]
    pub(crate) tick: Duration,

    /// Election timeout range in ticks, MIN..MAX (MAX excluded).
    #[arg(
        long,
        value_name = "MIN..MAX",
        value_parser = parse_tick_range,
        default_value_t = {
            let (minimum, maximum) = SimulationOptions::default().election_ticks;
            TickRange(minimum, maximum)
        }
    )]
    pub(crate) election_ticks: TickRange,

    /// Heartbeat interval in ticks.
    #[arg(long, value_name = "TICKS", default_value_t = SimulationOptions::default().heartbeat_ticks)]
    pub(crate) heartbeat_ticks: u32,

    /// How long a client waits for an answer before recording the outcome as unknown.
    #[arg(
        long,
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value_t = Duration(SimulationOptions::default().client_timeout_nanos)
    )]
    pub(crate) client_timeout: Duration,

    /// Largest clock-rate deviation of a node, in percent (10 = each node ticks up to 10%
    /// faster or slower than nominal) [default: drawn from the fault profile: ±1%, or
    /// ±2..10% with clock faults; at most ±4.5% in runs that use lease reads]
    #[arg(long, value_name = "PERCENT")]
    pub(crate) clock_drift: Option<f64>,

    /// A fault plan as JSON, replacing the one the seed draws (as `raft-sim shrink`
    /// prints it) [default: drawn from the seed and the profile]
    #[arg(long, value_name = "JSON", value_parser = parse_plan)]
    pub(crate) plan: Option<FaultPlan>,
}

/// A fault plan in JSON, checked.
fn parse_plan(text: &str) -> Result<FaultPlan, String> {
    let plan: FaultPlan =
        serde_json::from_str(text).map_err(|error| format!("not a fault plan: {error}"))?;
    plan.validate()?;
    Ok(plan)
}

impl SimulationArgs {
    /// The options of the run of `seed`, validated.
    pub(crate) fn options(&self, seed: u64) -> Result<SimulationOptions, String> {
        let options = SimulationOptions {
            seed,
            nodes: self.nodes,
            faults: self.faults,
            duration_nanos: self.duration.0,
            liveness_bound_nanos: self.liveness_bound.0,
            clients: self.clients,
            keys: self.keys,
            tick_nanos: self.tick.0,
            election_ticks: (self.election_ticks.0, self.election_ticks.1),
            heartbeat_ticks: self.heartbeat_ticks,
            client_timeout_nanos: self.client_timeout.0,
            clock_drift: self.clock_drift.map(|percent| percent / 100.0),
            plan: self.plan.clone(),
        };
        options.validate()?;
        Ok(options)
    }

    /// The arguments of `raft-sim replay` that reproduce the run of `seed` exactly: the
    /// common settings always, the advanced ones when they differ from the default.
    pub(crate) fn replay_arguments(&self, seed: u64) -> String {
        match self.options(seed) {
            Ok(options) => replay_arguments(&options),
            // Unreachable after a run, which validated the options; say so plainly.
            Err(error) => format!("replay --seed {seed} # invalid options: {error}"),
        }
    }
}

/// The arguments of `raft-sim replay` that reproduce a run of `options` exactly.
pub(crate) fn replay_arguments(options: &SimulationOptions) -> String {
    options.replay_arguments()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Durations parse in every unit, exactly, and print back to themselves.
    #[test]
    fn durations() {
        let nanos = |text: &str| parse_duration(text).map(|duration| duration.0);
        assert_eq!(nanos("20s"), Ok(20 * SECOND));
        assert_eq!(nanos("500ms"), Ok(500 * MILLISECOND));
        assert_eq!(nanos("1m"), Ok(60 * SECOND));
        assert_eq!(nanos("20"), Ok(20 * SECOND));
        assert_eq!(nanos("1.5"), Ok(1_500 * MILLISECOND));
        assert_eq!(nanos("0.1s"), Ok(100 * MILLISECOND));
        assert_eq!(nanos("250us"), Ok(250 * MICROSECOND));
        for bad in [
            "",
            "s",
            "20x",
            "-1s",
            "1.2.3s",
            "0.5ns",
            "99999999999999999999s",
        ] {
            let error = parse_duration(bad).expect_err(bad);
            assert!(!error.contains('\n'));
        }
        for text in ["20s", "1500ms", "250us", "7ns", "0s"] {
            assert_eq!(
                parse_duration(text).map(|d| d.to_string()),
                Ok(text.to_string())
            );
        }
    }

    // Seed ranges are A..B (B excluded), A..=B or N; reversed or empty ranges are refused.
    #[test]
    fn seed_ranges() {
        assert_eq!(
            parse_seed_range("0..1000"),
            Ok(SeedRange {
                start: 0,
                end: 1000
            })
        );
        assert_eq!(
            parse_seed_range("3..=5"),
            Ok(SeedRange { start: 3, end: 6 })
        );
        assert_eq!(parse_seed_range("7"), Ok(SeedRange { start: 7, end: 8 }));
        assert!(parse_seed_range("5..3").unwrap_err().contains("reversed"));
        assert!(parse_seed_range("3..3").unwrap_err().contains("empty"));
        assert!(parse_seed_range("a..3").is_err());
        assert!(parse_seed_range(&u64::MAX.to_string()).is_err());
    }

    // Timeout ranges are whole milliseconds, both ends included.
    #[test]
    fn timeout_ranges() {
        assert_eq!(
            parse_timeout_range("150..300ms"),
            Ok(TimeoutRange(150, 300))
        );
        assert_eq!(parse_timeout_range("150-300"), Ok(TimeoutRange(150, 300)));
        assert_eq!(
            parse_timeout_range("150ms..0.3s"),
            Ok(TimeoutRange(150, 300))
        );
        assert_eq!(
            parse_timeout_range("0.15..0.3s"),
            Ok(TimeoutRange(150, 300))
        );
        assert_eq!(parse_timeout_range("150ms"), Ok(TimeoutRange(150, 150)));
        assert!(
            parse_timeout_range("300..150ms")
                .unwrap_err()
                .contains("reversed")
        );
        assert!(parse_timeout_range("150.5..300ms").is_err());
        assert!(parse_timeout_range("1..3ms").is_err());
    }
}

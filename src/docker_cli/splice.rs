//! Where the task's output picks up again after the daemon came back: what each stream already
//! delivered, and which of the entries the daemon logged were not delivered yet. Pure.
//!
//! The CLI's attached stream and the daemon's log hold the same bytes in the same order. The
//! daemon stamps an entry as its log copier reads it, which may come a moment after the same
//! bytes went to the attached stream: an entry stamped more than [`LOGGING_SLACK`] after the last
//! arrival was not delivered. Among those stamped before that, the delivered ones are the
//! entries whose bytes end exactly where the delivered bytes end: the longest such run is taken
//! (identical lines within the slack may therefore be taken for delivered ones).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much of a stream's delivered bytes is kept to find where it stopped in the log.
pub(crate) const TAIL_BYTES: usize = 64 * 1024;

/// How far before the last arrival the log is read again: entries delivered late (a busy daemon,
/// a slow reader) were logged before they arrived.
pub(crate) const LOOK_BACK: Duration = Duration::from_secs(2);

/// How much later than its delivery the daemon may stamp an entry in its log.
pub(crate) const LOGGING_SLACK: Duration = Duration::from_secs(1);

/// What one stream (stdout or stderr) of the task has delivered so far.
#[derive(Debug, Default)]
pub(crate) struct Delivered {
    tail: Vec<u8>,
    /// When the last bytes were delivered (or logged, for bytes read back from the log).
    pub last_at: Option<SystemTime>,
}

impl Delivered {
    pub fn record(&mut self, bytes: &[u8], at: SystemTime) {
        if bytes.is_empty() {
            return;
        }
        self.tail.extend_from_slice(bytes);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
        self.last_at = Some(self.last_at.map_or(at, |last| last.max(at)));
    }

    /// Whether an entry logged at `at` may have been delivered already.
    pub fn may_hold(&self, at: SystemTime) -> bool {
        self.last_at.is_some_and(|last| at <= last + LOGGING_SLACK)
    }

    /// The first second of the log to read again, for a run started at `started`.
    pub fn read_again_from(&self, started: SystemTime) -> i32 {
        let from = match self.last_at {
            Some(last) => last
                .checked_sub(LOOK_BACK)
                .unwrap_or(UNIX_EPOCH)
                .max(started),
            None => started,
        };
        let secs = from
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        i32::try_from(secs).unwrap_or(i32::MAX)
    }

    /// What of `logged` (entries read again that may have been delivered) was not delivered.
    pub fn undelivered<'a>(&self, logged: &'a ReadAgain) -> &'a [u8] {
        &logged.bytes[self.delivered_prefix(&logged.bytes, &logged.ends)..]
    }

    /// How many bytes at the start of `all` (entries ending at `ends`, in order) were delivered:
    /// the longest run of whole entries whose bytes end as the delivered ones do. Linear in the
    /// bytes: which ends match is found once for all of them, not judged end by end against the
    /// whole tail (a task's output chooses how many ends there are).
    fn delivered_prefix(&self, all: &[u8], ends: &[usize]) -> usize {
        let tail = &self.tail[..];
        if tail.is_empty() {
            return 0;
        }
        let whole = tail_ends_in(tail, all);
        let short = &all[..all.len().min(tail.len())];
        let partial = prefixes_ending(short, tail);
        ends.iter()
            .rev()
            .copied()
            .find(|&end| match end >= tail.len() {
                true => whole[end],
                false => partial[end],
            })
            .unwrap_or(0)
    }
}

/// Entries of the log read again, held in one buffer: each costs its bytes and its end.
#[derive(Debug, Default)]
pub(crate) struct ReadAgain {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl ReadAgain {
    pub fn push(&mut self, entry: &[u8]) {
        self.bytes.extend_from_slice(entry);
        self.ends.push(self.bytes.len());
    }

    /// The memory held, per entry too: a task's empty lines are entries of one byte.
    pub fn held(&self) -> usize {
        self.bytes.len() + self.ends.len() * std::mem::size_of::<usize>()
    }
}

/// For each `p` in `0..=text.len()`, whether `text[..p]` ends with `pattern` (Knuth-Morris-Pratt).
fn tail_ends_in(pattern: &[u8], text: &[u8]) -> Vec<bool> {
    let borders = borders(pattern);
    let mut at = vec![false; text.len() + 1];
    let mut k = 0;
    for (i, &b) in text.iter().enumerate() {
        k = step(pattern, &borders, k, b);
        if k == pattern.len() {
            at[i + 1] = true;
        }
    }
    at
}

/// For each `n` in `0..=prefix.len()`, whether `n > 0` and `text` ends with `prefix[..n]`.
fn prefixes_ending(prefix: &[u8], text: &[u8]) -> Vec<bool> {
    let borders = borders(prefix);
    let mut at = vec![false; prefix.len() + 1];
    let k = text.iter().fold(0, |k, &b| step(prefix, &borders, k, b));
    let mut k = k;
    while k > 0 {
        at[k] = true;
        k = borders[k - 1];
    }
    at
}

/// `borders[i]`: the length of the longest proper prefix of `p[..=i]` that is also its suffix.
fn borders(p: &[u8]) -> Vec<usize> {
    let mut borders = vec![0; p.len()];
    for i in 1..p.len() {
        borders[i] = step(p, &borders, borders[i - 1], p[i]);
    }
    borders
}

/// The matcher of `p` in state `k` (that many bytes matched) after reading `b`.
fn step(p: &[u8], borders: &[usize], mut k: usize, b: u8) -> usize {
    while k > 0 && (k == p.len() || p[k] != b) {
        k = borders[k - 1];
    }
    match p.first().is_some_and(|_| k < p.len() && p[k] == b) {
        true => k + 1,
        false => k,
    }
}

/// An entry of the log read with timestamps: `<RFC 3339 time> <bytes>`, its time and bytes.
pub(crate) fn timestamped(entry: &[u8]) -> Option<(SystemTime, &[u8])> {
    let space = entry.iter().position(|&b| b == b' ')?;
    let at = rfc3339(std::str::from_utf8(&entry[..space]).ok()?)?;
    Some((at, &entry[space + 1..]))
}

/// `2006-01-02T15:04:05.999999999Z` (or with a `±hh:mm` offset), as the daemon writes it.
pub(crate) fn rfc3339(text: &str) -> Option<SystemTime> {
    let number = |s: &str| -> Option<i64> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (date, time) = text.split_once('T')?;
    let mut ymd = date.splitn(3, '-').map(number);
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset) = match time.strip_suffix('Z') {
        Some(clock) => (clock, 0),
        None => {
            let at = time.rfind(['+', '-'])?;
            let (h, mi) = time[at + 1..].split_once(':')?;
            let sign = if time.as_bytes()[at] == b'-' { -1 } else { 1 };
            (&time[..at], sign * (number(h)? * 3600 + number(mi)? * 60))
        }
    };
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = whole.splitn(3, ':').map(number);
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let nanos = match fraction.len() {
        0 => 0,
        1..=9 => number(fraction)? * 10_i64.pow(9 - fraction.len() as u32),
        _ => return None,
    };
    let secs = days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(lines: &[&str]) -> Vec<Vec<u8>> {
        lines.iter().map(|l| l.as_bytes().to_vec()).collect()
    }

    /// How many bytes of `logged` were delivered, as the follower learns it.
    fn prefix(d: &Delivered, logged: &[Vec<u8>]) -> usize {
        let mut read_again = ReadAgain::default();
        logged.iter().for_each(|e| read_again.push(e));
        read_again.bytes.len() - d.undelivered(&read_again).len()
    }

    /// The rule itself, end by end against the whole tail.
    fn prefix_by_the_rule(d: &Delivered, logged: &[Vec<u8>]) -> usize {
        let all = logged.concat();
        let mut ends: Vec<usize> = logged
            .iter()
            .scan(0, |end, e| {
                *end += e.len();
                Some(*end)
            })
            .collect();
        ends.reverse();
        ends.into_iter()
            .find(|&end| {
                let overlap = end.min(d.tail.len());
                overlap > 0 && all[end - overlap..end] == d.tail[d.tail.len() - overlap..]
            })
            .unwrap_or(0)
    }

    fn delivered(text: &str) -> Delivered {
        let mut d = Delivered::default();
        d.record(text.as_bytes(), UNIX_EPOCH + Duration::from_secs(100));
        d
    }

    #[test]
    fn the_log_picks_up_after_the_last_delivered_entry() {
        let d = delivered("tick 1\ntick 2\ntick 3\n");
        let logged = entries(&["tick 2\n", "tick 3\n", "tick 4\n"]);
        assert_eq!(prefix(&d, &logged), 14, "tick 2 and 3 were delivered");
        assert_eq!(prefix(&d, &entries(&["tick 4\n"])), 0);
        assert_eq!(
            prefix(&Delivered::default(), &logged),
            0,
            "nothing delivered: everything is new"
        );
    }

    #[test]
    fn entries_older_than_the_tail_still_match_where_it_ends() {
        let mut d = Delivered::default();
        let at = UNIX_EPOCH + Duration::from_secs(100);
        let mut logged = Vec::new();
        for i in 0..20_000 {
            let line = format!("line {i}\n");
            d.record(line.as_bytes(), at);
            logged.push(line.into_bytes());
        }
        logged.push(b"line new\n".to_vec());
        let all = logged.concat();
        assert_eq!(prefix(&d, &logged), all.len() - 9);
    }

    /// A task that printed empty lines while its stream lagged behind the log: every end but
    /// the first is judged, each against the whole tail.
    #[test]
    fn judging_the_most_held_is_linear() {
        let mut d = Delivered::default();
        let at = UNIX_EPOCH + Duration::from_secs(100);
        d.record(&vec![b'\n'; TAIL_BYTES], at);
        d.record(b"b\n", at);
        let mut logged = vec![b"b\n".to_vec()];
        logged.extend(std::iter::repeat_n(b"\n".to_vec(), (1 << 22) - 2));
        let mut read_again = ReadAgain::default();
        logged.iter().for_each(|e| read_again.push(e));
        let timer = std::time::Instant::now();
        assert_eq!(d.undelivered(&read_again).len(), logged.len() - 1);
        let took = timer.elapsed();
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert!(
            read_again.held() > 8 * logged.len(),
            "an entry costs more than its byte"
        );
    }

    proptest::proptest! {
        /// Over a small alphabet, so that ends match in many places, short and long tails alike.
        #[test]
        fn the_fast_judgement_is_the_rule(
            delivered in proptest::collection::vec(0u8..3, 0..40),
            logged in proptest::collection::vec(proptest::collection::vec(0u8..3, 0..6), 0..20),
            cut in 0usize..40,
        ) {
            let mut d = Delivered::default();
            d.record(&delivered, UNIX_EPOCH);
            d.tail.drain(..cut.min(d.tail.len()));
            proptest::prop_assert_eq!(prefix(&d, &logged), prefix_by_the_rule(&d, &logged));
        }
    }

    #[test]
    fn the_tail_keeps_only_its_bound() {
        let mut d = Delivered::default();
        let at = UNIX_EPOCH + Duration::from_secs(100);
        d.record(&vec![b'x'; TAIL_BYTES * 3], at);
        assert_eq!(d.tail.len(), TAIL_BYTES);
        assert!(
            d.may_hold(at + LOGGING_SLACK)
                && !d.may_hold(at + LOGGING_SLACK + Duration::from_nanos(1))
        );
        assert_eq!(d.read_again_from(UNIX_EPOCH), 98);
        assert_eq!(d.read_again_from(at), 100, "never before the run started");
    }

    #[test]
    fn the_daemons_timestamps_are_read_to_the_nanosecond() {
        let (at, rest) = timestamped(b"2026-12-06T23:14:42.123456789Z tick 7\n").unwrap();
        assert_eq!(rest, b"tick 7\n");
        let since_epoch = at.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(since_epoch, Duration::new(1_796_598_882, 123_456_789));
        let (offset, _) = timestamped(b"2026-12-07T00:14:42.123456789+01:00 x").unwrap();
        assert_eq!(offset, at);
        let (whole, _) = timestamped(b"1970-01-01T00:00:01Z x").unwrap();
        assert_eq!(whole, UNIX_EPOCH + Duration::from_secs(1));
        for bad in [
            &b"tick 7"[..],
            b"2026-13-06T23:14:42Z x",
            b"2026-12-06 23:14:42Z x",
            b"2026-12-06T23:14:42.1234567890Z x",
            b"-2026-12-06T23:14:42Z x",
        ] {
            assert_eq!(timestamped(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
